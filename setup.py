"""Build m2bridge's one optional compiled helper: the fast path's hot loops.

Everything else is in pyproject.toml. Without a C compiler (or Python's headers) the build
goes on without it and the helpers' pure-Python twins (``m2bridge/wsgi/fast_environ.py``,
``fast_response.py``) serve instead; workers log which ones they use.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "m2bridge.wsgi._speedups",
            ["m2bridge/wsgi/_speedups.c"],
            optional=True,
        )
    ]
)
