"""Ingest in a stack folder that only its owner can search, as a clone under /root (0700) is.

Started as root, nginx's worker runs as `nobody`. Before ingest kept nginx's files where that worker
can reach them, a body over nginx's 1 MiB memory buffer got nginx's own HTML 500 in such a stack
(its buffer file could not be created), and a socket there could not be connected to.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests

from sentinel import settings
from sentinel_local import processes


class PrivateIngest(processes.Ingest):
    """Ingest on its own port, its folder inside one that only its owner may search."""

    name = "ingest-private"

    def __init__(self, parent: Path) -> None:
        self.parent = parent

    @property
    def home(self) -> Path:  # type: ignore[override]
        return self.parent / "stack" / self.name

    @property
    def port(self) -> int:  # type: ignore[override]
        return settings.INGEST_PORT + 13

    def env(self) -> dict[str, str]:
        return processes.process_env(
            PROMETHEUS_MULTIPROC_DIR=str(self.home / "prometheus"), SENTINEL_INGEST_PORT=str(self.port)
        )


@pytest.fixture
def private_ingest() -> Iterator[PrivateIngest]:
    parent = Path(tempfile.mkdtemp(prefix="sentinel-private-", dir="/tmp"))
    parent.chmod(0o700)
    ingest = PrivateIngest(parent)
    ingest.up()
    try:
        yield ingest
    finally:
        ingest.down()
        shutil.rmtree(ingest.nginx_folder, ignore_errors=True)
        shutil.rmtree(parent, ignore_errors=True)


def test_a_body_over_nginxs_memory_buffer_is_accepted_in_a_private_stack(private_ingest: PrivateIngest) -> None:
    assert not processes.searchable_by_others(private_ingest.home)
    # nginx reaches granian on sockets there too.
    assert all(isinstance(bind, Path) for bind in private_ingest.upstreams)
    events = [{"type": "tool_call", "attributes": {"blob": "x" * 1000}} for _ in range(2000)]
    body = orjson.dumps(events)
    assert len(body) > 1024 * 1024  # client_body_buffer_size: nginx writes it to a file
    reply = requests.post(
        f"http://{settings.HOST}:{private_ingest.port}/events",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert reply.status_code == 202, reply.text[:300]
    assert reply.json()["accepted"] == len(events)
