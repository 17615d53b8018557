"""WSGI apps served by the worker in integration tests (framework apps and a test router)."""
