"""An ingest of a test's own: real nginx + granian, publishing to the pipeline's topic, on a free
port of its own, so a test can stop and start it without touching the shared ingest."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sentinel import settings
from sentinel_local import processes
from sentinel_local.stack.runner import free_port


class OwnIngest(processes.Ingest):
    """Ingest as the local stack runs it, with its home under `parent` and its port `port`."""

    def __init__(self, parent: Path, port: int, name: str) -> None:
        self.parent = parent
        self._port = port
        self.name = name

    @property
    def home(self) -> Path:  # type: ignore[override]
        return self.parent / self.name

    @property
    def port(self) -> int:  # type: ignore[override]
        return self._port

    @property
    def url(self) -> str:
        return f"http://{settings.HOST}:{self._port}"

    def env(self) -> dict[str, str]:
        return processes.process_env(
            PROMETHEUS_MULTIPROC_DIR=str(self.home / "prometheus"), SENTINEL_INGEST_PORT=str(self.port)
        )


@contextmanager
def own_ingest(name: str) -> Iterator[OwnIngest]:
    """An OwnIngest in a folder of its own, not started; stopped and removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix=f"sentinel-{name}-", dir="/tmp"))
    parent.chmod(0o755)  # nginx's worker (nobody, when started as root) reaches its sockets here
    ingest = OwnIngest(parent, free_port(), name)
    try:
        yield ingest
    finally:
        ingest.down()
        shutil.rmtree(parent, ignore_errors=True)
