"""``m2bridge bench ...``: run the benchmark (``python -m bench``), installed or in a checkout."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

#: The benchmark's entry module: installed with m2bridge (the checkout's ``bench/``, mapped).
BENCH_MAIN = "m2bridge.bench.__main__"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        add_help=False,
        prefix_chars="+",  # every option, --help included, belongs to `python -m bench`
        help="run the benchmark (same options as `python -m bench`)",
        description="Run the benchmark; every argument goes to `python -m bench`.",
    )
    parser.add_argument("args", nargs=argparse.REMAINDER)
    parser.set_defaults(run=run)


def bench_main() -> ModuleType | None:
    """The benchmark's ``__main__`` module, or None when this m2bridge has none."""
    try:
        return importlib.import_module(BENCH_MAIN)
    except ModuleNotFoundError as exc:
        if exc.name is None or not BENCH_MAIN.startswith(exc.name):
            raise  # a dependency of the benchmark is missing: say which
        return None


def run(args: argparse.Namespace) -> int:
    module = bench_main()
    if module is None:
        log.error("the benchmark is not installed: %s not found", BENCH_MAIN)
        print(
            "m2bridge bench: the benchmark is not installed with this m2bridge "
            "(install it with pip, or run `python -m bench` in the source checkout)",
            file=sys.stderr,
        )
        return 2
    result: int = module.main(args.args)
    return result
