"""Give the WSGI environ the request target that granian leaves out, before the OTel Flask
instrumentation reads it.

The instrumentation looks for `RAW_URI` or `REQUEST_URI` (gunicorn and uWSGI set them) to record
the target; without either it rebuilds the full URL from the environ with wsgiref and redacts it,
twice per request (once for the span, once for its metrics): ~50 us of ingest's ~300 us per traced
single-event request, called directly. The span then carries `http.target` instead of `http.url`
(the scheme, host and port are on it as their own attributes either way).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# A path that needs no percent-encoding to stand for itself in a request line.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/._~!$&'()*+,;=:@-]*")


def request_target(environ: dict[str, Any]) -> str:
    """The request target (path and query) as it would appear on the request line."""
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    if not _PLAIN_PATH.fullmatch(path):
        # PEP 3333 paths are decoded bytes read as latin-1: encode them back the same way.
        path = quote(path.encode("latin-1", "replace"), safe="/;=,~!$&'()*+:@")
    query = environ.get("QUERY_STRING")
    return f"{path}?{query}" if query else path


def with_request_uri(app: WsgiApp) -> WsgiApp:
    """`app`, called with `REQUEST_URI` set when the server did not set it or `RAW_URI`."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "RAW_URI" not in environ and "REQUEST_URI" not in environ:
            environ["REQUEST_URI"] = request_target(environ)
        return app(environ, start_response)

    return wrapped
