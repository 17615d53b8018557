"""The supervisor's policy as pure functions: desired state + process table + now -> actions.

``reconcile`` never touches a process: the arbiter gives it a snapshot (``ProcessView``) of one
watcher's processes and executes the ``Spawn`` / ``Stop`` / ``Kill`` actions it returns.
Rolling replacement (reload, ``max_requests``), surplus stops (``decr`` stops the highest slot),
slot choice (a process that died is replaced in its own slot), kill-after-``graceful_timeout``
and the flapping back-off all live here, tested with literal tables and an injected ``now``.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

#: processes a rolling replacement may run beyond ``numprocesses`` (one at a time: staggered).
SURGE = 1


@dataclass(frozen=True)
class FlappingPolicy:
    """When exits come too fast: ``attempts`` exits within ``window`` s start a back-off.

    The n-th back-off waits ``min(retry_in * 2**(n-1), max_delay)`` seconds; after
    ``max_retries`` back-offs the watcher gives up (``-1``: never).
    """

    attempts: int = 3
    window: float = 5.0
    retry_in: float = 1.0
    max_delay: float = 30.0
    max_retries: int = 5


@dataclass(frozen=True)
class Policy:
    """A watcher's fixed settings that reconcile needs."""

    graceful_timeout: float = 30.0
    warmup_delay: float = 0.0
    rolling: bool = True
    flapping: FlappingPolicy = FlappingPolicy()


@dataclass(frozen=True)
class Desired:
    """What the operator asked for: a count, a code generation, running or stopped."""

    numprocesses: int
    generation: int = 0
    active: bool = True
    rolling: bool = True


@dataclass(frozen=True)
class ProcessView:
    """One live (not yet reaped) process, as reconcile sees it."""

    pid: int
    wid: int
    generation: int = 0
    started_at: float = 0.0
    ready: bool = True
    stopping_since: float | None = None
    killed: bool = False
    retire: bool = False


@dataclass(frozen=True)
class History:
    """What reconcile remembers between ticks: recent unexpected exits, the back-off, and the
    slots of processes that died (``vacant``, oldest first: their replacements take them)."""

    failures: tuple[float, ...] = ()
    retries: int = 0
    not_before: float = 0.0
    gave_up: bool = False
    last_spawn_at: float = float("-inf")
    vacant: tuple[int, ...] = ()


@dataclass(frozen=True)
class Spawn:
    wid: int
    generation: int


@dataclass(frozen=True)
class Stop:
    pid: int


@dataclass(frozen=True)
class Kill:
    pid: int


Action = Spawn | Stop | Kill


def reconcile(
    desired: Desired,
    processes: Sequence[ProcessView],
    now: float,
    policy: Policy,
    history: History,
) -> list[Action]:
    """The actions that move one watcher's processes toward ``desired``.

    Args:
        desired: the target count, generation and state.
        processes: every process not yet reaped, stopping ones included.
        now: the current monotonic time.
        policy: the watcher's timeouts and modes.
        history: exits and back-off state (see ``record_exit``).

    Returns:
        Kills first, then stops, then spawns.
    """
    actions: list[Action] = [
        Kill(p.pid)
        for p in processes
        if p.stopping_since is not None
        and not p.killed
        and now - p.stopping_since >= policy.graceful_timeout
    ]
    running = [p for p in processes if p.stopping_since is None]
    if not desired.active:
        return actions + [Stop(p.pid) for p in running]
    stale = sorted(
        (p for p in running if p.generation != desired.generation or p.retire),
        key=lambda p: (p.started_at, p.wid),
    )
    stale_pids = {p.pid for p in stale}
    fresh = sorted((p for p in running if p.pid not in stale_pids), key=lambda p: p.wid)
    kept, surplus = fresh[: desired.numprocesses], fresh[desired.numprocesses :][::-1]
    rolling = desired.rolling and policy.rolling
    retired = _stale_to_stop(stale, kept, desired.numprocesses, rolling)
    stops = [*surplus, *retired]
    actions += [Stop(p.pid) for p in stops]
    remaining = len(kept) + len(stale) - len(retired)
    stopping = any(p.stopping_since is not None for p in processes) or bool(stops)
    count = _spawn_count(desired.numprocesses - len(kept), remaining, desired, rolling, stopping)
    count = min(count, _spawn_allowance(history, now, policy))
    wids = _free_wids(processes, count, history.vacant)
    return actions + [Spawn(wid, desired.generation) for wid in wids]


def _stale_to_stop(
    stale: list[ProcessView], kept: list[ProcessView], numprocesses: int, rolling: bool
) -> list[ProcessView]:
    if not rolling:
        return stale
    ready = sum(1 for p in kept if p.ready)
    excess = ready + len(stale) - numprocesses
    return stale[: max(0, excess)]


def _spawn_count(want: int, remaining: int, desired: Desired, rolling: bool, stopping: bool) -> int:
    if want <= 0:
        return 0
    if not rolling:
        return 0 if stopping else want
    room = desired.numprocesses + SURGE - remaining
    return max(0, min(want, room))


def _spawn_allowance(history: History, now: float, policy: Policy) -> int:
    """How many spawns the back-off and the warm-up stagger allow right now."""
    if history.gave_up or now < history.not_before:
        return 0
    if policy.warmup_delay <= 0:
        return 1 << 30
    return 1 if now - history.last_spawn_at >= policy.warmup_delay else 0


def _free_wids(
    processes: Sequence[ProcessView], count: int, vacant: Sequence[int] = ()
) -> list[int]:
    """``count`` slot ids no live process holds (stopping ones still hold theirs): the vacant
    slots of dead processes first (oldest first), then the lowest free ones."""
    used = {p.wid for p in processes}
    wids = [wid for wid in dict.fromkeys(vacant) if wid not in used][:count]
    used.update(wids)
    wid = 1
    while len(wids) < count:
        if wid not in used:
            wids.append(wid)
        wid += 1
    return wids


def record_spawn(history: History, now: float, wid: int | None = None) -> History:
    """Remember a spawn into slot ``wid`` (no longer vacant); the warm-up stagger counts from it."""
    return replace(history, last_spawn_at=now, vacant=tuple(w for w in history.vacant if w != wid))


def record_vacancy(history: History, wid: int) -> History:
    """A process died while it ran (crash, ``kill -9``, its own exit): its replacement takes
    its slot ``wid`` rather than the lowest free one."""
    return replace(history, vacant=(*(w for w in history.vacant if w != wid), wid))


def record_exit(history: History, now: float, lifetime: float, policy: FlappingPolicy) -> History:
    """Account for an exit nobody asked for; may start a back-off or give up.

    A process that lived at least ``window`` seconds was healthy: its exit clears the record.
    Exits the operator commanded must not be passed here. Once given up, nothing changes.
    """
    if history.gave_up:
        return history
    if lifetime >= policy.window:
        return replace(history, failures=(), retries=0)
    failures = (*(t for t in history.failures if now - t < policy.window), now)
    if len(failures) < policy.attempts:
        return replace(history, failures=failures)
    retries = history.retries + 1
    if 0 <= policy.max_retries < retries:
        return replace(history, failures=(), retries=retries, gave_up=True)
    delay = min(policy.retry_in * 2 ** (retries - 1), policy.max_delay)
    return replace(history, failures=(), retries=retries, not_before=now + delay)


def record_failure(history: History) -> History:
    """The command cannot start at all (exec failed): give up at once, no respawn storm."""
    return replace(history, gave_up=True)


def reset(history: History) -> History:
    """Forget failures and back-off (the operator started the watcher again)."""
    return replace(History(), last_spawn_at=history.last_spawn_at, vacant=history.vacant)
