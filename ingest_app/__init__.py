"""Ingest: the HTTP front door. POST /events -> validate -> Kafka `mcp.events`, traced."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Flask, Response
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from werkzeug.exceptions import HTTPException

from ingest_app import server_span
from ingest_app.events_endpoint import EventsEndpoint
from ingest_app.publisher import APP_EXTENSION, KafkaPublisher
from ingest_app.request_uri import with_request_uri
from sentinel import metrics, settings


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
        SENTINEL_SERVER_SPAN=settings.INGEST_SERVER_SPAN,
    )
    if test_config:
        app.config.update(test_config)
    init_app(app)
    return app


def init_app(app: Flask) -> None:
    """Attach the Kafka publisher, the routes, JSON errors and the server span (see server_span)."""
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

    recorder = app.config["SENTINEL_SERVER_SPAN"]
    if recorder == server_span.HOOKS:
        server_span.init_app(app)
        # POST /events is answered before Flask's request handling (events_endpoint says why);
        # the instrumentation below would not see it, so it keeps the Flask view.
        app.wsgi_app = EventsEndpoint(app, app.wsgi_app)  # type: ignore[method-assign]
    elif recorder == server_span.FLASK_INSTRUMENTATION:
        untraced = ",".join(path.lstrip("/") for path in sorted(server_span.UNTRACED_PATHS))
        FlaskInstrumentor().instrument_app(app, excluded_urls=untraced)
        # Outermost, so the instrumentation finds the request target already there.
        app.wsgi_app = with_request_uri(app.wsgi_app)  # type: ignore[method-assign]
    else:
        choices = " or ".join(repr(name) for name in server_span.RECORDERS)
        raise ValueError(f"SENTINEL_INGEST_SERVER_SPAN is {recorder!r}; use {choices}")
