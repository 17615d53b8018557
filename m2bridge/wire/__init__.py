"""The bytes m2bridge speaks, without I/O: Mongrel2's handler protocol, WebSocket frames, credits.

Every module in this package is pure: it must not import zmq, gevent, socket, subprocess or
signal (``tests/unit/test_imports.py`` checks each module found under this path).
"""
