"""Build m2bridge's optional compiled helpers: the fast path's hot loops and its socket read.

Everything else is in pyproject.toml. Without a C compiler (or Python's headers) the build
goes on without them and their pure-Python twins serve instead (``m2bridge/wsgi/speedups.py``,
``m2bridge/zmqread.py``); workers log which ones they use.
"""

from setuptools import Extension, setup

setup(
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
    ]
)
