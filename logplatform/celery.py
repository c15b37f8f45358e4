"""The Celery application shared by the API, the consumer and the workers."""

import os

from celery import Celery

# Connects the receivers that time every task for the metrics.
import ops.metrics  # noqa: F401

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logplatform.settings")

app = Celery("logplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
