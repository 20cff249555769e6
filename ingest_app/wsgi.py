"""gunicorn entry point: `gunicorn -c ingest_app/gunicorn_conf.py ingest_app.wsgi:app`."""

from __future__ import annotations

from ingest_app import create_app
from sentinel import semconv
from sentinel.logs import setup_logging
from sentinel.telemetry import setup_tracing

setup_logging(semconv.SERVICE_INGEST)
# gunicorn imports this module in each worker after the fork, so the exporter thread is ours.
setup_tracing(semconv.SERVICE_INGEST)
app = create_app()
