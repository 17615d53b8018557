"""Worker processes: the ZeroMQ handler worker (gevent + zmq.green) and the fd-path worker.

Importing this package imports nothing: each worker module monkey-patches or imports gevent
itself, in the order its ``main`` fixes.
"""
