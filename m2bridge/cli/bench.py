"""``m2bridge bench ...``: run the benchmark (``python -m bench``) from a source checkout."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any


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


def run(args: argparse.Namespace) -> int:
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # bench/ lives beside the package, in the checkout
    try:
        bench_main = importlib.import_module("bench.__main__")
    except ImportError:
        print(
            "m2bridge bench: run it from the source checkout (bench/ is not installed)",
            file=sys.stderr,
        )
        return 2
    result: int = bench_main.main(args.args)
    return result
