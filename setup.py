"""Build m2bridge's optional compiled helpers, and map the checkout's apps and benchmark into it.

Everything else is in pyproject.toml. Without a C compiler (or Python's headers) the build
goes on without the helpers and their pure-Python twins serve instead
(``m2bridge/wsgi/speedups.py``, ``m2bridge/zmqread.py``); workers log which ones they use.

The repository's ``handlers/`` and ``bench/`` install as ``m2bridge.handlers`` and
``m2bridge.bench``: no generic top-level name lands in site-packages (a project's own
``handlers`` module stays importable). In a checkout they are also ``handlers`` and ``bench``.
"""

import sys

from setuptools import Extension, find_packages, setup

#: installed name -> directory in the checkout
MAPPED = {
    "m2bridge.handlers": "handlers",
    "m2bridge.bench": "bench",
    "m2bridge.bench.apps": "bench/apps",
}

#: An editable install (``pip install -e .``) is a checkout: there the apps stay importable as
#: ``handlers`` from any directory too, as they were before (the test stacks' workers run in
#: temporary directories). A wheel or an sdist never installs that name.
CHECKOUT_ONLY = ["handlers"] if "editable_wheel" in sys.argv else []

setup(
    packages=[
        *find_packages(include=["m2bridge", "m2bridge.*", "mongrel2_conf", "mongrel2_conf.*"]),
        "m2bridge.web.static",  # data only: the web console's page, script and charts
        *MAPPED,
        *CHECKOUT_ONLY,
    ],
    package_dir=MAPPED,
    ext_modules=[
        Extension(
            "m2bridge.wsgi._speedups",
            ["m2bridge/wsgi/_speedups.c"],
            optional=True,
        ),
        Extension(
            "m2bridge._zmqread",
            ["m2bridge/_zmqread.c"],
            optional=True,
        ),
    ],
)
