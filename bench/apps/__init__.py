"""WSGI apps the benchmark serves on every stack; each module exposes ``app``.

``hello`` (tiny response), ``io`` (10 ms of gevent-friendly waiting), ``big`` (256 KiB response)
and ``post`` (reads a 100 KB upload). No side effects at import.
"""
