"""PEP 3333 without I/O: the environ, ``wsgi.input`` bodies, the response framing, one app call.

Every module in this package is pure: it must not import zmq, gevent, socket, subprocess or
signal (``tests/unit/test_imports.py`` checks each module found under this path).
"""
