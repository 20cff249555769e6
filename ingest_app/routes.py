"""HTTP routes: POST /events and the operator endpoints."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request

from ingest_app.accept import accept_events
from ingest_app.publisher import APP_EXTENSION, KafkaPublisher
from sentinel import metrics

bp = Blueprint("ingest", __name__)


def _json(payload: Any, status: int, **headers: str) -> Response:
    return Response(orjson.dumps(payload), status=status, mimetype="application/json", headers=headers)


@bp.post("/events")
def post_events() -> Response:
    """Accept a batch of audit events (one object, an array or NDJSON); 202 once Kafka has them."""
    reply = accept_events(request, current_app.config, current_app.extensions[APP_EXTENSION])
    return _json(reply.payload, reply.status, **reply.headers)


@bp.get("/healthz")
def healthz() -> Response:
    return _json({"status": "ok"}, 200)


@bp.get("/readyz")
def readyz() -> Response:
    publisher: KafkaPublisher = current_app.extensions[APP_EXTENSION]
    if publisher.ready():
        return _json({"status": "ready", "kafka": "reachable"}, 200)
    return _json({"status": "not ready", "kafka": "unreachable"}, 503)


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    payload, content_type = metrics.render()
    return Response(payload, status=200, content_type=content_type)
