"""Ingest: the HTTP front door. POST /events -> validate -> Kafka `mcp.events`, traced."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Flask, Response
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from werkzeug.exceptions import HTTPException

from ingest_app.publisher import APP_EXTENSION, KafkaPublisher
from sentinel import metrics, settings

# Probes and scrapes: operators poll them every few seconds; a trace each would only be noise.
UNTRACED_PATHS = ("/healthz", "/readyz", "/metrics")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Application factory: defaults, then environment (via settings), then the test override."""
    app = Flask(__name__)
    app.config.from_mapping(
        MAX_CONTENT_LENGTH=settings.INGEST_MAX_BODY_BYTES,
        SENTINEL_MAX_EVENTS=settings.INGEST_MAX_EVENTS,
        SENTINEL_MAX_EVENT_BYTES=settings.INGEST_MAX_EVENT_BYTES,
        SENTINEL_TOKENS=settings.parse_tokens(settings.INGEST_TOKENS),
        SENTINEL_RETRY_AFTER_S=5,
        SENTINEL_PUBLISHER=None,
    )
    if test_config:
        app.config.update(test_config)
    init_app(app)
    return app


def init_app(app: Flask) -> None:
    """Attach the Kafka publisher, the routes, JSON errors and the server span (the OTel Flask
    instrumentation: `POST /events`, a child of the caller's W3C context)."""
    from ingest_app.routes import bp

    app.extensions[APP_EXTENSION] = app.config["SENTINEL_PUBLISHER"] or KafkaPublisher()
    app.register_blueprint(bp)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        # Flask's own refusals (413 body too large, 405, 404) answer in JSON too.
        status = exc.code or 500
        if status == 413:
            metrics.INGEST_REQUESTS.labels("413").inc()
        body = {"error": exc.name.lower().replace(" ", "_"), "detail": exc.description}
        return Response(orjson.dumps(body), status=status, mimetype="application/json")

    # The instrumentation's exclusions are regular expressions searched in the request's URL.
    untraced = ",".join(path.lstrip("/") for path in UNTRACED_PATHS)
    FlaskInstrumentor().instrument_app(app, excluded_urls=untraced)
