"""POST /events answered by `ingest_app.events_endpoint` (behind granian's WSGI interface) gives what the Flask view
gives (served when the OTel Flask instrumentation records the server span): status, headers, body,
what is published, and the metrics counted. Requests other than POST /events are Flask's."""

from __future__ import annotations

import orjson
import pytest
from werkzeug.test import EnvironBuilder

from ingest_app.events_endpoint import EventsEndpoint
from tests.unit.conftest import FakePublisher
from tests.unit.ingest_app.cases import (
    CASES,
    EVENT,
    BrokenPublisher,
    answer_by_test_client,
    headers_of,
    ingest_app,
    published,
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_endpoint_answers_as_the_flask_view(case: str) -> None:
    by_view, view_batches, view_counted = answer_by_test_client("flask-instrumentation", case)
    by_endpoint, endpoint_batches, endpoint_counted = answer_by_test_client("hooks", case)
    assert by_endpoint.status == by_view.status
    assert headers_of(by_endpoint.headers.items()) == headers_of(by_view.headers.items())
    assert orjson.loads(by_endpoint.data) == orjson.loads(by_view.data)
    assert published(endpoint_batches) == published(view_batches)
    assert endpoint_counted == view_counted


@pytest.mark.parametrize(("recorder", "served_by"), [("hooks", "endpoint"), ("flask-instrumentation", "flask")])
def test_post_events_is_served_by_the_endpoint_unless_the_instrumentation_records(
    recorder: str, served_by: str
) -> None:
    app = ingest_app(recorder, FakePublisher())
    assert isinstance(app.wsgi_app, EventsEndpoint) is (served_by == "endpoint")
    served: list[str] = []
    view = app.view_functions["ingest.post_events"]
    app.view_functions["ingest.post_events"] = lambda: served.append("flask") or view()
    client = app.test_client()
    assert client.post("/events", json=EVENT).status_code == 202
    assert served == ([] if served_by == "endpoint" else ["flask"])
    assert client.get("/healthz").status_code == 200


def test_an_unhandled_error_is_raised_in_testing_as_flask_does() -> None:
    app = ingest_app("hooks", BrokenPublisher(), TESTING=True)
    with pytest.raises(RuntimeError, match="librdkafka exploded"):
        app.test_client().post("/events", json=EVENT)


def test_what_the_servers_start_response_raises_is_not_turned_into_a_500() -> None:
    app = ingest_app("hooks", FakePublisher())
    calls: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        calls.append(status)
        raise ConnectionError("client gone")

    environ = EnvironBuilder(path="/events", method="POST", json=EVENT).get_environ()
    with pytest.raises(ConnectionError):
        app.wsgi_app(environ, start_response)
    assert calls == ["202 ACCEPTED"]  # called once, with the answer; not again with a 500
