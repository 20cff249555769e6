"""sentinel_local.processes: where nginx reaches ingest's app server (a Unix socket locally, loopback TCP
in k8s), and when the bridge's log says its consumer group has settled."""

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
from sentinel import settings
from sentinel_local import processes
from sentinel_local.processes import Bridge, bridge_settled
from sentinel_local.stack.runner import ServiceError


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


def _log(*messages: str) -> str:
    return "".join(f'{{"level":"info","service":"sentinel-bridge","msg":"{m}"}}\n' for m in messages)


RUNNING_2 = "bridge running 2 consumers: pids [11, 12]"
CONSUMING = "bridge consuming mcp.events as group sentinel-bridge"


def test_one_consumer_is_settled_at_its_first_assignment() -> None:
    assert not bridge_settled(_log(CONSUMING))
    assert bridge_settled(_log(CONSUMING, "assigned partitions [0, 1, 2, 3]"))


def test_the_first_of_two_consumers_holding_everything_is_not_settled() -> None:
    first_only = (RUNNING_2, CONSUMING, "assigned partitions [0, 1, 2, 3]", CONSUMING)
    assert not bridge_settled(_log(*first_only))
    split = (*first_only, "revoking partitions [0, 1, 2, 3]", "assigned partitions [0, 1]")
    assert not bridge_settled(_log(*split))
    assert bridge_settled(_log(*split, "assigned partitions [2, 3]"))


def test_consumers_assigned_in_one_round_are_settled() -> None:
    log = _log(RUNNING_2, CONSUMING, CONSUMING, "assigned partitions [0, 1]", "assigned partitions [2, 3]")
    assert bridge_settled(log)


def test_every_consumer_must_run_its_loop() -> None:
    assert not bridge_settled(_log(RUNNING_2, CONSUMING, "assigned partitions [0, 1]", "assigned partitions [2, 3]"))


def test_lost_partitions_unsettle_the_group_until_reassigned() -> None:
    settled = (RUNNING_2, CONSUMING, CONSUMING, "assigned partitions [0, 1]", "assigned partitions [2, 3]")
    lost = (*settled, "partitions lost [0, 1]; nothing committed for them")
    assert not bridge_settled(_log(*lost))
    assert bridge_settled(_log(*lost, "assigned partitions [0, 1]", "assigned partitions [2, 3]"))


def test_a_reassignment_after_a_long_outage_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A Kafka restart: the consumers lose their partitions, librdkafka logs a failed connect ~40
    # times a second until the broker is back, then the group is reassigned. Past 256 KiB of that,
    # the bridge was once taken for unsettled and stopped by `up`.
    monkeypatch.setattr(settings, "STACK_DIR", tmp_path)
    bridge = Bridge()
    monkeypatch.setattr(bridge, "pid", lambda: 4242)
    noise = "%3|1796634629.500|FAIL|rdkafka#consumer-1| [thrd:127.0.0.1:9092/bootstrap]: Connect failed\n" * 4000
    settled = (RUNNING_2, CONSUMING, CONSUMING, "assigned partitions [0]", "assigned partitions [1]")
    lost = ("partitions lost [0]; nothing committed for them", "partitions lost [1]; nothing committed for them")
    bridge.home.mkdir(parents=True)
    bridge.log_path.write_text(_log(*settled, *lost) + noise)
    assert bridge.log_path.stat().st_size > 256 * 1024
    assert not bridge.ready()
    with bridge.log_path.open("a") as log:
        log.write(_log("assigned partitions [1]", "assigned partitions [0]"))
    assert bridge.ready()
