"""The relay process between Mongrel2 and workers: its wire words, routing state and I/O loop.

``wire`` and ``state`` are pure (checked by path in ``tests/unit/test_imports.py``); ``router``
holds the zmq sockets.
"""
