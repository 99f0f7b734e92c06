"""The status API, on the daemon's side: the document served at ``GET /api/v1/status``.

``status`` builds it from the monitor's state, ``summary`` holds the rules of its one-glance
answer, ``openapi`` its schema. Clients (``linkmon status``) may import ``summary`` and
``openapi``, which need nothing beyond the standard library; ``status`` is the daemon's.
"""
