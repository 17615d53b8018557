"""`m2bridge ctl` run by a user who may not reach the control socket: exit 3 and one line.

The supervisor runs the real Mongrel2 stack as this user; `ctl` runs as user ``nobody``. It
cannot be ``setpriv ... /usr/bin/python3`` (that interpreter has no pyzmq) nor setpriv with
this interpreter (it lives under /root, which nobody cannot read). So this interpreter
imports the CLI (and the client, which `ctl` imports lazily) as root, drops to nobody for
good (``setresuid``), and only then parses the arguments and runs the command, as
``m2bridge ctl`` would.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.helpers.environ import environ_without_coverage
from tests.helpers.stack import RunningStack, demo, wait_active

#: Runs ``m2bridge ARGV...`` as user nobody (see the module docstring).
CLI_AS_NOBODY = textwrap.dedent(
    """
    import os, pwd, sys
    from m2bridge.cli import main, make_parser
    import m2bridge.supervisor.client  # ctl imports it lazily: import it while root
    make_parser()  # imports every subcommand while root
    nobody = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setresgid(nobody.pw_gid, nobody.pw_gid, nobody.pw_gid)
    os.setresuid(nobody.pw_uid, nobody.pw_uid, nobody.pw_uid)
    sys.exit(main(sys.argv[1:]))
    """
)


def ctl_as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI_AS_NOBODY, "ctl", "--timeout", "5", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd="/",
        env=environ_without_coverage(),  # it drops to nobody: no root-owned data file to write
    )


def assert_unreachable(result: subprocess.CompletedProcess[str], stack: RunningStack) -> None:
    """Exit 3, nothing on stdout, and one stderr line naming the endpoint and the reason."""
    assert result.returncode == 3, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert stack.endpoint in lines[0]
    assert "permission denied" in lines[0].lower()


def test_ctl_as_another_user_exits_3_with_one_line_naming_the_endpoint(base: Path) -> None:
    with demo(base, workers=1) as (stack, _port):
        wait_active(stack, workers=1)
        # The stack file is readable by everyone; the rundir (0700) holding the socket is not.
        base.chmod(0o755)
        by_stack = ctl_as_nobody("-s", str(stack.stack_file), "status")
        assert_unreachable(by_stack, stack)
        by_endpoint = ctl_as_nobody("-e", stack.endpoint, "status")
        assert_unreachable(by_endpoint, stack)
        assert stack.status("hello")["state"] == "active"


def test_ctl_as_another_user_is_refused_by_the_socket_mode_at_once(base: Path) -> None:
    with demo(base, workers=1) as (stack, _port):
        wait_active(stack, workers=1)
        # Every directory open: the socket's own mode (0600) still refuses nobody.
        base.chmod(0o755)
        stack.rundir.chmod(0o755)
        started = time.monotonic()
        refused = ctl_as_nobody("-s", str(stack.stack_file), "status")
        took = time.monotonic() - started
        assert_unreachable(refused, stack)
        assert took < 4, "ctl waited for its 5 s timeout instead of failing at once"
        assert stack.status("hello")["state"] == "active"
