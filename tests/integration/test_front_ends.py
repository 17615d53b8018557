"""Two Mongrel2 front ends share one pool of worker hosts, each host its own network namespace.

Topology (docs/deployment.md, "Several front ends"): the deployment of ``examples/deployment``,
its example addresses replaced by the namespaces' own. The front hosts fa and fb each run
``m2bridge up front.toml`` (Mongrel2 and its relay; the same config, server uuid included, on
each front's own address); the worker hosts w1 and w2 each run ``m2bridge up worker.toml``,
``WORKERS`` workers with one ``--relay``/``--recv-spec`` pair per front end, serving the echo
app instead of hello; the clients run on a fifth host. A worker keeps one channel per front
end (its relay's DEALER and an XPUB to that front's Mongrel2), so a reply leaves on the
channel its request came in on.

Each front's load tags its query strings with the front's name and checks every answer is the
echo of its own request: a reply delivered through the other Mongrel2 (whose connection ids
overlap, both servers numbering from the start) would come back as a wrong answer or a
timeout, and counts as lost.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.netns import Host, lan
from tests.helpers.stack import RunningStack
from tests.integration.test_hosts import (
    WORKERS,
    Deployment,
    Load,
    all_ready,
    host_stack,
    load,
    report,
    served_by,
)

log = logging.getLogger(__name__)

FRONTS = ("fa", "fb")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "deployment"
#: The fronts' private addresses in the example files, in the order of FRONTS.
EXAMPLE_ADDRESSES = ("10.0.0.1", "10.0.0.2")
#: Answers wanted per front and phase.
ANSWERS = 200
#: Longest a client of the front that keeps running may wait for an answer while the other
#: front end restarts (the load's own timeout is 2 s; 0.01-0.07 s measured, restart or not).
UNDISTURBED_WAIT = 1.0
#: Seconds a worker host may take from `m2bridge up` to ready (as ``test_hosts.JOIN_BOUND``),
#: though one front end is down: far below the supervisor's ``ready_timeout`` (30 s).
READY_BOUND = 8.0
#: Seconds from a front end's return (its stack ready) until a worker host that started
#: while it was down serves it again.
REJOIN_BOUND = 5.0


class FrontEnds:
    """The front hosts' stacks: started, stopped and started again one at a time."""

    def __init__(self, hosts: dict[str, Host], workdir: Path) -> None:
        self.hosts, self.workdir = hosts, workdir
        self.stacks: dict[str, RunningStack] = {}
        self._exits: dict[str, contextlib.ExitStack] = {}

    def start(self, name: str) -> RunningStack:
        """Run front ``name``'s Mongrel2 and relay until every watcher is active."""
        address = self.hosts[name].address
        text, conf = (
            (EXAMPLE / file).read_text().replace(EXAMPLE_ADDRESSES[0], address)
            for file in ("front.toml", "front.conf")
        )
        exit_stack = contextlib.ExitStack()
        base = self.workdir / f"{name}-{time.monotonic_ns()}"
        running = host_stack(self.hosts[name], base, text, {"front.conf": conf})
        stack = exit_stack.enter_context(running)
        self._exits[name], self.stacks[name] = exit_stack, stack
        stack.wait_until(lambda: all_ready(stack, WORKERS), timeout=20)
        return stack

    def stop(self, name: str) -> None:
        """Stop front ``name``'s stack (its supervisor and every child, by PID)."""
        self.stacks.pop(name)
        self._exits.pop(name).close()

    def stop_all(self) -> None:
        for name in list(self.stacks):
            self.stop(name)


def worker_text(hosts: dict[str, Host]) -> str:
    """``examples/deployment/worker.toml`` for these hosts, serving the echo app."""
    text = (EXAMPLE / "worker.toml").read_text().replace("hello", "echo")
    for example, front in zip(EXAMPLE_ADDRESSES, FRONTS, strict=True):
        text = text.replace(example, hosts[front].address)
    return text


@contextlib.contextmanager
def deployed_front_ends() -> Iterator[tuple[Deployment, FrontEnds]]:
    """The LAN (fa, fb, w1, w2, client) with both fronts and both worker hosts serving;
    everything stopped and removed at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="m2b-", dir="/tmp"))
    try:
        with lan((*FRONTS, "w1", "w2", "client")) as hosts:
            fronts = FrontEnds(hosts, workdir)
            try:
                for name in FRONTS:
                    fronts.start(name)
                deployment = Deployment(
                    hosts, workdir, fronts.stacks["fa"], worker_text=worker_text(hosts)
                )
                try:
                    for name in ("w1", "w2"):
                        deployment.start(name)
                    yield deployment, fronts
                finally:
                    for name in list(deployment.workers):
                        deployment.stop(name)
            finally:
                fronts.stop_all()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def front_ends() -> Iterator[tuple[Deployment, FrontEnds]]:
    with deployed_front_ends() as running:
        yield running


def tagged_load(
    deployment: Deployment, front: str, seconds: float = 30.0
) -> contextlib.AbstractContextManager[Load]:
    """The load of ``test_hosts`` on ``front``, its query strings tagged with the front."""
    return load(deployment, seconds, front=front, tag=f"front={front}&")


def serves_more(stack: RunningStack) -> float:
    """Seconds until the workers of ``stack`` serve more than now (at most REJOIN_BOUND; a
    worker publishes its counters every 0.5 s, while the load answers thousands a second)."""
    before = served_by(stack)
    return stack.wait_until(lambda: served_by(stack) > before, timeout=REJOIN_BOUND)


def test_each_worker_host_serves_both_front_ends_and_every_reply_returns_to_its_own(front_ends):
    deployment, _ = front_ends
    for front in FRONTS:  # one front at a time: both worker hosts take a share of each
        with tagged_load(deployment, front) as running:
            for stack in deployment.workers.values():
                serves_more(stack)
            running.wait_answered(ANSWERS)
            counts = running.finish()
        log.warning(report(f"{front} alone", counts))
        assert counts["sent"] == counts["answered"], report("lost", counts)
    with tagged_load(deployment, "fa") as on_a, tagged_load(deployment, "fb") as on_b:
        on_a.wait_answered(ANSWERS)
        on_b.wait_answered(ANSWERS)
        both = {"fa": on_a.finish(), "fb": on_b.finish()}
    for front, counts in both.items():
        log.warning(report(f"{front} beside the other", counts))
        assert counts["sent"] == counts["answered"], report("lost", counts)


def test_a_front_end_restarting_leaves_the_other_losing_none_waiting_under_1_s_then_serves(
    front_ends,
):
    deployment, fronts = front_ends
    with tagged_load(deployment, "fb", seconds=60.0) as on_b:
        on_b.wait_answered(ANSWERS)
        started = time.monotonic()
        fronts.stop("fa")
        on_b.wait_answered(ANSWERS)  # fb serves on while fa is down
        fronts.start("fa")
        restarted = time.monotonic() - started
        on_b.wait_answered(ANSWERS)  # and after fa is back
        counts = on_b.finish()
    log.warning(report(f"fb while fa restarted ({restarted:.2f} s)", counts))
    assert counts["sent"] == counts["answered"], report("lost", counts)
    assert counts["longest"] < UNDISTURBED_WAIT, f"an fb client waited {counts['longest']:.2f} s"
    with tagged_load(deployment, "fa") as on_a:  # fa alone: both worker hosts serve it again
        for stack in deployment.workers.values():
            serves_more(stack)
        on_a.wait_answered(ANSWERS)
        after = on_a.finish()
    log.warning(report("fa after its restart", after))
    assert after["sent"] == after["answered"], report("lost", after)


def test_a_worker_host_started_while_a_front_end_is_down_is_ready_and_serves_the_other(
    front_ends,
):
    deployment, fronts = front_ends
    deployment.stop("w2")
    fronts.stop("fa")
    try:
        started = time.monotonic()
        w2 = deployment.start("w2", wait=False)
        w2.wait_until(lambda: all_ready(w2, WORKERS), timeout=READY_BOUND)
        ready = time.monotonic() - started
        with tagged_load(deployment, "fb") as on_b:
            serves_more(w2)
            on_b.wait_answered(ANSWERS)
            counts = on_b.finish()
    finally:
        fronts.start("fa")
    log.warning(report(f"fb, w2 ready {ready:.2f} s after its start with fa down", counts))
    assert counts["sent"] == counts["answered"], report("lost", counts)
    with tagged_load(deployment, "fa") as on_a:  # fa back: w2 takes its share of it too
        took = serves_more(w2)
        on_a.wait_answered(ANSWERS)
        after = on_a.finish()
    log.warning(report(f"fa back: w2 served it {took:.2f} s after", after))
    assert after["sent"] == after["answered"], report("lost", after)
