"""Where nginx reaches ingest's app server: a Unix socket locally, loopback TCP in k8s."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from granian.cli import OctalIntType

from ingest_app import server
from sentinel import processes, settings
from sentinel.stack.runner import ServiceError


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _options(argv: list[str], name: str) -> list[str]:
    return [value for option, value in itertools.pairwise(argv) if option == name]


def test_given_a_socket_granian_binds_it_writable_by_nginxs_worker(tmp_path: Path) -> None:
    socket = tmp_path / "granian.sock"
    argv = server.argv(socket)
    assert _option(argv, "--uds") == str(socket)
    assert "--host" not in argv and "--port" not in argv
    # nginx's worker runs as `nobody` under root, and connecting to a socket needs write access:
    # the value must reach granian as 0o666, which its CLI reads as octal only with a leading 0.
    permissions = _option(argv, "--uds-permissions")
    assert permissions is not None
    assert OctalIntType().convert(permissions, None, None) == 0o666


def test_without_a_socket_granian_binds_the_loopback_upstream_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "INGEST_UPSTREAM_PORT", 18123)
    argv = server.argv()
    assert (_option(argv, "--host"), _option(argv, "--port")) == ("127.0.0.1", "18123")
    assert "--uds" not in argv


def test_an_app_server_per_worker_binds_a_given_port_with_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "INGEST_WORKERS", 3)
    argv = server.argv(18125, workers=1)
    assert (_option(argv, "--host"), _option(argv, "--port"), _option(argv, "--workers")) == ("127.0.0.1", "18125", "1")
    # Without a count, granian runs every worker (k8s: one server per pod).
    assert _option(server.argv(), "--workers") == "3"


def test_the_local_upstreams_are_a_socket_per_worker_or_a_port_per_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(settings, "INGEST_WORKERS", 2)
    monkeypatch.setattr(settings, "INGEST_UPSTREAM_PORT", 18123)
    assert server.upstreams(tmp_path) == [tmp_path / "ingest-0.sock", tmp_path / "ingest-1.sock"]
    assert server.upstreams(None) == [18123, 18124]
    assert server.upstreams(None, 18500) == [18500, 18501]
    # A socket's path holds at most 107 bytes: a folder too deep for one gets ports instead.
    assert server.upstreams(tmp_path / ("d" * 120)) == [18123, 18124]


@pytest.mark.parametrize(
    ("upstreams", "servers"),
    [
        ([Path("/srv/ingest/ingest-0.sock")], "server unix:/srv/ingest/ingest-0.sock;"),
        (
            [Path("/srv/ingest/ingest-0.sock"), Path("/srv/ingest/ingest-1.sock")],
            "server unix:/srv/ingest/ingest-0.sock; server unix:/srv/ingest/ingest-1.sock;",
        ),
        ([8081, 8082], "server 127.0.0.1:8081; server 127.0.0.1:8082;"),
    ],
)
def test_nginx_sends_each_request_to_the_app_server_with_fewest_in_flight(
    upstreams: list[int | Path], servers: str
) -> None:
    config = processes.nginx_config(8080, upstreams, Path("/srv/ingest"))
    upstream_block = next(line for line in config.splitlines() if "upstream ingest_app" in line)
    # The balancing method must come before keepalive, or nginx balances round-robin.
    assert f"{{ least_conn; {servers} keepalive 64;" in upstream_block, upstream_block


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user can search, as a stack folder usually is (pytest's own are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="sentinel-upstream-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def test_a_stack_nginx_cannot_search_gets_a_folder_of_its_own_in_the_temporary_folder(
    monkeypatch: pytest.MonkeyPatch, open_folder: Path
) -> None:
    # As a clone under /root (0700): nginx's worker, `nobody`, could reach neither a socket nor its
    # body buffers in it (a body over 1 MiB got nginx's own HTML 500).
    private = open_folder / "private"
    private.mkdir(mode=0o700)
    monkeypatch.setattr(settings, "STACK_DIR", private)
    monkeypatch.setattr(tempfile, "tempdir", str(open_folder))
    ingest = processes.Ingest()
    try:
        ingest.prepare()
        folder = ingest.nginx_folder
        assert folder.parent == open_folder and folder.name.startswith("sentinel-ingest-")
        assert processes.searchable_by_others(folder)
        sockets = [folder / f"ingest-{i}.sock" for i in range(settings.INGEST_WORKERS)]
        assert ingest.upstreams == sockets
        assert _options(ingest.argv(), "--upstream-socket") == [str(path) for path in sockets]
        config = ingest.nginx_conf.read_text()
        assert f"client_body_temp_path {folder}/nginx-temp/body;" in config
        assert all(f"server unix:{path};" in config for path in sockets)
        ingest.prepare()  # the next start takes its own folder over

        os.chown(folder, 65534, 65534)  # made by someone else (nobody): its name is predictable
        with pytest.raises(ServiceError, match="not a folder of this user's"):
            ingest.prepare()
    finally:
        private.chmod(0o755)


def test_a_searchable_stack_keeps_nginxs_files_and_the_socket_in_ingests_folder(
    monkeypatch: pytest.MonkeyPatch, open_folder: Path
) -> None:
    monkeypatch.setattr(settings, "STACK_DIR", open_folder)
    ingest = processes.Ingest()
    ingest.prepare()
    assert ingest.nginx_folder == ingest.home == open_folder / "ingest"
    sockets = [ingest.home / f"ingest-{i}.sock" for i in range(settings.INGEST_WORKERS)]
    assert ingest.upstreams == sockets
    assert _options(ingest.argv(), "--upstream-socket") == [str(path) for path in sockets]
    config = ingest.nginx_conf.read_text()
    assert f"client_body_temp_path {ingest.home}/nginx-temp/body;" in config
    assert all(f"server unix:{path};" in config for path in sockets)


def test_a_folder_too_deep_for_a_socket_path_falls_back_to_the_upstream_port(
    monkeypatch: pytest.MonkeyPatch, open_folder: Path
) -> None:
    # A Unix socket's path holds at most 107 bytes; a longer one cannot be bound at all.
    deep = open_folder / ("d" * 120)
    monkeypatch.setattr(settings, "STACK_DIR", deep)
    ingest = processes.Ingest()
    ingest.prepare()
    ports = [ingest.upstream_port + i for i in range(settings.INGEST_WORKERS)]
    assert ingest.upstreams == ports
    assert all(f"server 127.0.0.1:{port};" in ingest.nginx_conf.read_text() for port in ports)
    assert "--upstream-socket" not in ingest.argv()
