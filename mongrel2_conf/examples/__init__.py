"""Example Mongrel2 configs (``*.conf``) and a config built in Python (``generate``)."""
