"""Bearer tokens on POST /events: a second ingest with tokens configured, started through the
processes module beside the pipeline's own. A missing or wrong token gets 401; a right one 202; no
token (configured or offered) ever appears in that ingest's log or in any span attribute."""

from __future__ import annotations

import base64
import json
import random
import secrets
import uuid
from collections.abc import Iterator

import pytest
import requests

from sentinel import semconv, settings
from sentinel_cli.jaeger import JaegerClient
from sentinel_local import processes
from tests.security.helpers import (
    HTTP_TIMEOUT,
    Accepted,
    assert_stored_intact,
    dumps,
    outcome,
    post,
    raw_request,
    record,
)

pytestmark = [pytest.mark.security, pytest.mark.usefixtures("pipeline")]


class TokenIngest(processes.Ingest):
    """Ingest on its own port with bearer tokens, its own log and pid under the stack folder."""

    name = "ingest-tokens"

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens

    @property
    def port(self) -> int:  # type: ignore[override]
        return settings.INGEST_PORT + 7

    @property
    def url(self) -> str:
        return f"http://{settings.HOST}:{self.port}"

    def env(self) -> dict[str, str]:
        return processes.process_env(
            PROMETHEUS_MULTIPROC_DIR=str(self.home / "prometheus"),
            SENTINEL_INGEST_PORT=str(self.port),
            SENTINEL_INGEST_URL=self.url,
            SENTINEL_INGEST_TOKENS=",".join(self.tokens),
            # Debug logging makes a leak more likely to show, not less.
            SENTINEL_LOG_LEVEL="DEBUG",
        )


@pytest.fixture(scope="module")
def token_ingest() -> Iterator[TokenIngest]:
    ingest = TokenIngest([f"tok-{secrets.token_urlsafe(24)}", f"tok-{secrets.token_urlsafe(24)}"])
    ingest.down()
    ingest.up()
    try:
        yield ingest
    finally:
        ingest.down()


def _traceparent() -> tuple[str, str]:
    trace_id = f"{random.getrandbits(128):032x}"
    return trace_id, f"00-{trace_id}-{random.getrandbits(64):016x}-01"


def test_tokens_are_required_and_never_leak(token_ingest: TokenIngest) -> None:
    first, second = token_ingest.tokens
    wrong = f"tok-{secrets.token_urlsafe(24)}"
    offered = [first, second, wrong]
    refused = {
        "no Authorization header": None,
        "wrong token": f"Bearer {wrong}",
        "token minus its last character": f"Bearer {first[:-1]}",
        "token plus one character": f"Bearer {first}x",
        "token of another case": f"Bearer {first.swapcase()}",
        "both tokens in one header": f"Bearer {first},{second}",
        "no scheme": first,
        "Basic scheme": "Basic " + base64.b64encode(f"user:{first}".encode()).decode(),
        "Bearer without a token": "Bearer ",
        "Bearer and spaces": "Bearer     ",
        "Bearer with a 64 KB token": "Bearer " + "A" * 65536,
        "Bearer with a Latin-1 token": "Bearer " + "\u00e9\u00ff" * 10,
    }
    with record("tokens: missing, wrong, near-miss; right ones (second ingest)") as row:
        accepted = Accepted()
        traces: list[str] = []
        for case, authorization in refused.items():
            trace_id, traceparent = _traceparent()
            headers = {"traceparent": traceparent}
            if authorization is not None:
                headers["Authorization"] = authorization
            event = {"type": "token-refused", "event_id": str(uuid.uuid4()), "case": case}
            try:
                response = post(dumps(event), headers=headers, base_url=token_ingest.url)
            except requests.ConnectionError:
                row.saw("connection refused by the server")  # a 64 KB header may be cut off by nginx
                continue
            row.events += 1
            row.saw(outcome(response))
            assert response.status_code in (400, 401, 431), f"{case}: {response.status_code} {response.text[:200]}"
            if response.status_code == 401:
                assert response.json()["error"] == "unauthorized"
                assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
            assert not any(token in response.text for token in offered), f"{case}: a token is echoed"
            if response.status_code == 401:  # answered by the app, so traced (nginx's own refusals are not)
                traces.append(trace_id)

        for token in (first, second):
            trace_id, traceparent = _traceparent()
            traces.append(trace_id)
            events = [{"type": "token-accepted", "i": i} for i in range(3)]
            response = post(
                dumps(events),
                headers={"Authorization": f"Bearer {token}", "traceparent": traceparent},
                base_url=token_ingest.url,
            )
            row.events += len(events)
            row.saw(outcome(response), len(events))
            assert response.status_code == 202, response.text
            assert not any(t in response.text for t in offered)
            accepted.add_response(response, events, trace_id=trace_id)

        # Auth comes before the body: a bad body without a token is 401, with a token 400.
        response = post(b"{not json", base_url=token_ingest.url)
        assert response.status_code == 401, response.text
        response = post(b"{not json", headers={"Authorization": f"Bearer {first}"}, base_url=token_ingest.url)
        assert response.status_code == 400, response.text
        # A request nginx refuses (a header too large) with the right token in it: nothing logged.
        answer = raw_request(
            b"POST /events HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer " + first.encode() + b"\r\n"
            b"X-Big: " + b"b" * 20000 + b"\r\nContent-Length: 2\r\n\r\n{}",
            port=token_ingest.port,
        )
        row.saw(f"{answer.status} oversized header with the right token")
        assert 400 <= answer.status < 500

        assert_stored_intact(row, accepted)

        # Every span of every trace we sent, and the latest ingest server spans, must be token-free.
        jaeger = JaegerClient()
        spans_seen = 0
        for trace_id in traces:
            spans = jaeger.wait_for(trace_id, {semconv.SPAN_INGEST}, timeout_s=30)
            assert spans, f"no spans in Jaeger for trace {trace_id}"
            spans_seen += len(spans)
            for span in spans:
                text = json.dumps(span.tags, default=str)
                assert not any(t in text for t in offered), f"a token in the attributes of {span.name}: {text[:300]}"
            raw = requests.get(f"{jaeger.base_url}/api/traces/{trace_id}", timeout=HTTP_TIMEOUT).text
            assert not any(t in raw for t in offered), f"a token in trace {trace_id} (tags, logs or process)"
        for spans in jaeger.find(semconv.SERVICE_INGEST, semconv.SPAN_INGEST, lookback="1h", limit=200):
            spans_seen += len(spans)
            for span in spans:
                text = json.dumps(span.tags, default=str)
                assert not any(t in text for t in offered), f"a token in the attributes of {span.name}"
        row.saw(f"{spans_seen} spans token-free")

        logs = [token_ingest.log_path, *(processes.get(n).log_path for n in ("bridge", "worker"))]
        for log in logs:
            text = log.read_text("utf-8", "replace") if log.exists() else ""
            assert not any(t in text for t in offered), f"a token appears in {log}"
        row.saw("logs token-free")
