"""HTTP routes: POST /events and the operator endpoints."""

from __future__ import annotations

from functools import partial
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request

from ingest_app.accept import Incoming, accept_events
from ingest_app.events_endpoint import EVENTS_PATH
from ingest_app.publisher import APP_EXTENSION, KafkaPublisher
from sentinel import metrics

bp = Blueprint("ingest", __name__)


def _json(payload: Any, status: int, **headers: str) -> Response:
    return Response(orjson.dumps(payload), status=status, mimetype="application/json", headers=headers)


@bp.post(EVENTS_PATH)
def post_events() -> Response:
    """POST /events through Flask: served so only when the OTel Flask instrumentation records the
    server span (SENTINEL_INGEST_SERVER_SPAN); otherwise `events_endpoint` answers it first."""
    incoming = Incoming(
        request.headers.get("Authorization"),
        request.content_type,
        request.content_length,
        partial(request.get_data, cache=False),
    )
    reply = accept_events(incoming, current_app.config, current_app.extensions[APP_EXTENSION])
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
