"""The environment for a child process of a test, without the coverage tool's variables.

Under ``scripts/test`` every Python subprocess is measured; a probe of what a module imports,
or a process that gives up root and so cannot write the root-owned data file, must run
without it: what the tool does in that process is not the project's behaviour.
"""

from __future__ import annotations

import os


def environ_without_coverage() -> dict[str, str]:
    """``os.environ`` less every ``COVERAGE_*`` variable."""
    return {key: value for key, value in os.environ.items() if not key.startswith("COVERAGE_")}
