"""WSGI apps only the benchmark needs (``handlers/`` has no large-response app).

Each module exposes ``app``; no side effects at import.
"""
