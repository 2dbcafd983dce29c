"""WSGI entry point (gunicorn tradingsite.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")

application = get_wsgi_application()

from apps.core import query_parameters  # noqa: E402  (needs the apps that get_wsgi_application loads)

# Built now, as each web process starts: the first request with a query string would wait for it.
query_parameters.prepare()
