"""A worker whose request holds the CPU misses its heartbeat: the supervisor kills it, counts it
as ``hung``, logs it, and the worker started in its slot serves (real supervisor and
``m2bridge serve`` worker on a FakeMongrel2)."""

from __future__ import annotations

import textwrap

from m2bridge.testing import FakeMongrel2
from tests.helpers.stack import RunningStack, running_stack
from tests.helpers.worker import REPO_ROOT

#: ``/spin`` never yields to the gevent hub: no ``--timeout`` can cancel it.
SPIN_APP = textwrap.dedent(
    """
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/spin":
            while True:
                pass
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"fine"]
    """
)


def pids(stack: RunningStack) -> list[int]:
    """Every process of watcher ``hello``, whatever its state."""
    return [p["pid"] for p in stack.processes("hello")]


def test_a_worker_spinning_on_the_cpu_is_replaced_within_seconds(base):
    (base / "spin_app.py").write_text(SPIN_APP)
    with FakeMongrel2(base) as fake:
        stack_text = f"""
        [watchers.hello]
        cmd = "$(python) -m m2bridge serve spin_app:app --send-spec {fake.send_spec} --recv-spec {fake.recv_spec} --timeout 1"
        working_dir = "{base}"
        readiness = "stats"
        graceful_timeout = 2
        hang_timeout = 2
        env = {{ PYTHONPATH = "{REPO_ROOT}" }}
        """  # noqa: E501
        with running_stack(base, stack_text) as stack:
            stack.wait_until(lambda: len(stack.pids("hello")) == 1)
            [hung] = stack.pids("hello")
            fake.request("/spin")
            took = stack.wait_until(lambda: hung not in pids(stack), timeout=8)
            assert took < 5  # 2 s of silence, + at most 0.5 s to notice, + a publish interval
            stats = stack.call("stats", name="hello")  # what `ctl --json stats hello` prints
            assert stats["watchers"][0]["restarts"]["hung"] == 1
            assert f"hello.1 (pid {hung}) missed its heartbeat for" in stack.log()
            stack.wait_until(lambda: len(stack.pids("hello")) == 1, timeout=10)
            assert stack.processes("hello")[0]["wid"] == 1  # replaced in its slot
            answer = fake.response(fake.request("/"), timeout=5)
            assert answer.status == 200
