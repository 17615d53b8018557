"""End-to-end benchmark of m2bridge against gunicorn, uWSGI and granian (``python -m bench``).

See ``bench/README.md`` for the method, its limits and how to read the report.
"""
