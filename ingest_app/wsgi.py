"""The WSGI app as the server imports it (`ingest_app.server`): once in each worker process."""

from __future__ import annotations

from ingest_app import create_app
from sentinel import semconv
from sentinel.gc_tuning import tune_gc
from sentinel.logs import setup_logging
from sentinel.telemetry import setup_tracing

setup_logging(semconv.SERVICE_INGEST)
# Imported by each server worker itself (not inherited across a fork), so the exporter thread is ours.
setup_tracing(semconv.SERVICE_INGEST)
app = create_app()
tune_gc()
