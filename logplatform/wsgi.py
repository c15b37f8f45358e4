"""WSGI entry point, served by gunicorn as `logplatform.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logplatform.settings")

application = get_wsgi_application()
