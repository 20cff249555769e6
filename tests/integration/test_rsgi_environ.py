"""`ingest_app.rsgi_app.wsgi_environ` reads a request as granian's WSGI interface does: the same
request, sent to granian serving a WSGI app and then an RSGI app on the same address, gives the same
environ (what the server span, Werkzeug and Flask read), on a Unix socket (the local stack's) and on
loopback TCP (the k8s pod's). Needs granian only, no service."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel import settings
from sentinel_local import processes

# Prints every key granian's WSGI environ has for the request (its copy of the process's own
# environment left out), the rsgi side through wsgi_environ; values as text, the body as read.
APP = textwrap.dedent(
    """
    import json, os

    from ingest_app.rsgi_app import wsgi_environ

    SKIP = {"wsgi.input", "wsgi.errors"}

    def _shown(environ, body):
        shown = {k: str(v) for k, v in environ.items() if k not in SKIP and os.environ.get(k) != v}
        return json.dumps({**shown, "body": body.decode()}).encode()

    def wsgi(environ, start_response):
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [_shown(environ, body)]

    class Rsgi:
        async def __rsgi__(self, scope, proto):
            body = await proto()
            proto.response_bytes(200, [("content-type", "application/json")], _shown(wsgi_environ(scope, b""), body))

    rsgi = Rsgi()
    """
)
REQUESTS = [
    ("POST", "/events?tenant=a%20b&x=1", [("Content-Type", "application/json"), ("traceparent", "00-abc")], b"{}"),
    (
        "POST",
        "/events",
        [("X-Repeated", "one"), ("X-Repeated", "two"), ("User-Agent", "mcp-proxy/1.0"), ("Content-Length", "2")],
        b"[]",
    ),
    ("GET", "/readyz", [("Authorization", "Bearer t0ken")], b""),
    # Percent-encoded UTF-8 in the path (WSGI: the bytes as latin-1) and an encoded slash.
    ("GET", "/%C3%A9t%C3%A9/a%20b%2Fc", [], b""),
]


@pytest.fixture
def app_folder(tmp_path: Path) -> Path:
    (tmp_path / "dump_app.py").write_text(APP)
    return tmp_path


def _serve(folder: Path, interface: str, address: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{settings.REPO_ROOT}"}
    command = [sys.executable, "-m", "granian", "--interface", interface, *address, "--no-ws", "--http", "1"]
    return subprocess.Popen(
        [*command, "--no-access-log", f"dump_app:{interface}"],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _environs(folder: Path, interface: str, upstream: Path | int) -> Iterator[dict[str, str]]:
    if isinstance(upstream, Path):
        address = ["--uds", str(upstream)]
    else:
        address = ["--host", "127.0.0.1", "--port", str(upstream)]
    server = _serve(folder, interface, address)
    try:
        deadline = time.monotonic() + 30
        while not processes.listening(upstream):
            assert server.poll() is None, f"granian ({interface}) exited with {server.returncode}"
            assert time.monotonic() < deadline, f"granian ({interface}) did not listen on {upstream} in 30 s"
            time.sleep(0.1)
        for method, target, headers, body in REQUESTS:
            connection = _connection(upstream)
            connection.putrequest(method, target, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            if not any(name == "Content-Length" for name, _ in headers) and body:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            assert response.status == 200, response.read()
            yield json.loads(response.read())
            connection.close()
    finally:
        server.terminate()
        server.wait(30)


def _connection(upstream: Path | int) -> http.client.HTTPConnection:
    if isinstance(upstream, int):
        return http.client.HTTPConnection("127.0.0.1", upstream, timeout=10)
    connection = http.client.HTTPConnection("localhost", timeout=10)
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(upstream))
    connection.sock = sock
    return connection


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("where", ["unix socket", "loopback"])
def test_wsgi_environ_reads_a_request_as_granians_wsgi_interface(app_folder: Path, where: str) -> None:
    upstream: Path | int = app_folder / "app.sock" if where == "unix socket" else _free_port()
    by_wsgi = list(_environs(app_folder, "wsgi", upstream))
    by_rsgi = list(_environs(app_folder, "rsgi", upstream))
    assert len(by_wsgi) == len(REQUESTS)
    for request, wsgi, rsgi in zip(REQUESTS, by_wsgi, by_rsgi, strict=True):
        assert rsgi == wsgi, request
    # What the comparison covers, so that an empty environ on both sides cannot pass.
    first = by_wsgi[0]
    assert first["QUERY_STRING"] == "tenant=a%20b&x=1" and first["HTTP_TRACEPARENT"] == "00-abc", first
    assert by_wsgi[1]["HTTP_X_REPEATED"] == "one,two" and by_wsgi[1]["body"] == "[]", by_wsgi[1]
    assert {"SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR", "SERVER_PROTOCOL", "wsgi.url_scheme"} <= first.keys()
    assert by_wsgi[3]["PATH_INFO"] == "/été/a b/c".encode().decode("latin-1"), by_wsgi[3]
