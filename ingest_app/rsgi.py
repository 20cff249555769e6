"""The RSGI app as the server imports it (`ingest_app.server`): once in each worker process."""

from __future__ import annotations

from ingest_app.rsgi_app import IngestApp
from ingest_app.wsgi import app as flask_app
from sentinel import settings

app = IngestApp(flask_app, threads=settings.INGEST_THREADS)
