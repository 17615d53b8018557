"""``m2bridge web``: a live web console of a running supervisor, as its control-socket client.

``series`` derives the charts' figures from two consecutive snapshots (pure), ``app`` is the
WSGI application (routes, token, CSRF), ``hub`` fans updates out to the event streams,
``client`` talks to the supervisor on ``zmq.green`` and ``server`` runs the whole process;
``static/`` holds the page (plain JS, the vendored uPlot).
"""
