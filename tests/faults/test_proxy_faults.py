"""The MCP audit proxy under faults: a real MCP client (the `mcp` SDK's ClientSession) calls a tool of
the real server-everything through the stdio proxy while ingest is away, or while the proxy is
SIGKILLed with events in its spool. No call may fail, and every audit event must be in ClickHouse
exactly once.

The proxy posts to an ingest of the test's own (nginx + granian, publishing to the pipeline's
topic) on a port of its own: the fault stops that ingest, never the pipeline's, and the running
bridge and worker carry its events on to ClickHouse. Each test gives its proxy a server name of its
own (`--name`); its rows are found by that name in the stored payload.

What must arrive is known from both ends of the session, not from the rows:

- the client: every `tools/call` carries a message unique to the run (`<run> call <i>`), which must
  come back echoed and be in exactly one stored event; it counts the audited notifications the
  server sends it (list_changed), and sends `notifications/initialized` once;
- the proxy: its count of settled requests per method (`sentinel_proxy_calls_total`, one audit
  event each: initialize, tools/list, the server's roots/list, the calls), read from its /metrics
  (SENTINEL_PROXY_METRICS_PORT) before the session ends;
- for the SIGKILL, the spool itself, read just before the kill: the event ids it holds must all
  arrive, and the killed session must have no other row.

Scale: a third of SENTINEL_FAULT_EVENTS calls for the outage (1,000 at CI scale, 6,666 at full
scale), a fifteenth before the SIGKILL (200 and 1,333). The time is set by the outage (60 s within a
100 s load), not by the count.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
import requests
from clickhouse_driver import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from prometheus_client.parser import text_string_to_metric_families

from mcp_proxy import audit
from sentinel import settings
from sentinel_local import processes, stack
from sentinel_local.stack.runner import port_open
from tests.faults.harness import DRAIN_TIMEOUT_S, SCALE, Figures, child_pids
from tests.integration import mcp_peers
from tests.own_ingest import OwnIngest, free_port, own_ingest
from workers.clickhouse.client import new_client
from workers.clickhouse.schema import QUALIFIED_EVENTS_TABLE

pytestmark = pytest.mark.faults

OUTAGE_CALLS = max(1, SCALE // 3)
KILL_CALLS = max(1, SCALE // 15)
CALLS_AFTER_RESTART = 10
# The outage starts 15 s in and ingest is started again 60 s later; its start (5 to 15 s on a busy
# machine) still falls well before the last call.
LOAD_S = 100.0
OUTAGE_AT_S = 15.0
OUTAGE_S = 60.0
TOOL = "echo"
METRICS_POLL_S = 0.25
ROWS_POLL_S = 1.0
# How far back the row queries look (received_at is ingest's Kafka timestamp): the run and a margin.
ROWS_WINDOW_S = 3600


# -- the test's own ingest --------------------------------------------------------------------


@pytest.fixture(scope="module")
def carriers() -> None:
    """The pipeline's bridge and worker, which carry the test ingest's events to ClickHouse: started
    if they are not running, never restarted (others may be using them)."""
    try:
        for name in ("worker", "bridge"):
            processes.get(name).up()
    except stack.ServiceError as exc:
        pytest.fail(f"{exc}\n\nStart the pipeline with `.venv/bin/sentinel up`.", pytrace=False)


@pytest.fixture
def ingest() -> Iterator[OwnIngest]:
    """Not started: each test starts and stops it as its fault needs."""
    with own_ingest("ingest-proxy-faults") as own:
        yield own


# -- the proxy's metrics ----------------------------------------------------------------------


@dataclass(frozen=True)
class Scrape:
    samples: list[tuple[str, dict[str, str], float]]

    @classmethod
    def of(cls, port: int) -> Scrape:
        text = requests.get(f"http://{settings.HOST}:{port}/metrics", timeout=5).text
        return cls(
            [
                (s.name, dict(s.labels), s.value)
                for family in text_string_to_metric_families(text)
                for s in family.samples
            ]
        )

    def total(self, name: str, **labels: str) -> float:
        return sum(v for n, lab, v in self.samples if n == name and all(lab.get(k) == x for k, x in labels.items()))

    def requests_by_method(self, server: str) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for name, labels, value in self.samples:
            if name == "sentinel_proxy_calls_total" and labels.get("server") == server:
                counts[labels["method"]] += int(value)
        return dict(counts)

    @property
    def spool_bytes(self) -> float:
        return self.total("sentinel_proxy_spool_bytes")

    @property
    def in_memory(self) -> float:
        return self.total("sentinel_proxy_audit_queue_depth")

    @property
    def dropped(self) -> float:
        return self.total("sentinel_proxy_events_dropped_total")


class MetricsWatch(threading.Thread):
    """Scrapes the proxy's /metrics every METRICS_POLL_S: the spool's peak, and when it emptied."""

    def __init__(self, port: int) -> None:
        super().__init__(name="proxy-metrics-watch", daemon=True)
        self.port = port
        self.peak_spool_bytes = 0.0
        self.emptied_at: float | None = None  # the first time the spool was empty after `watch_emptying`
        self._emptying_since: float | None = None
        self._halt = threading.Event()

    def watch_emptying(self) -> None:
        self._emptying_since = time.monotonic()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def run(self) -> None:
        while not self._halt.wait(METRICS_POLL_S):
            try:
                scrape = Scrape.of(self.port)
            except requests.RequestException:
                continue  # not serving yet, or gone
            now = time.monotonic()
            self.peak_spool_bytes = max(self.peak_spool_bytes, scrape.spool_bytes)
            if self._emptying_since is not None and self.emptied_at is None and scrape.spool_bytes == 0:
                self.emptied_at = now


def wait_for(what: str, check: Any, timeout_s: float) -> Any:
    """Polls `check()` until it returns something truthy; fails saying `what` otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = check()
        except requests.RequestException:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(METRICS_POLL_S)


# -- the MCP client ---------------------------------------------------------------------------


def proxy_env(data_dir: Path, ingest_url: str, metrics_port: int) -> dict[str, str]:
    return processes.process_env(
        SENTINEL_PROXY_DATA_DIR=str(data_dir),
        SENTINEL_PROXY_INGEST_URL=ingest_url,
        SENTINEL_PROXY_METRICS_PORT=str(metrics_port),
        OTEL_TRACES_EXPORTER="none",  # the proxy's spans are not what these tests are about
    )


@asynccontextmanager
async def mcp_session(
    argv: list[str], env: dict[str, str], notifications: Counter[str]
) -> AsyncIterator[ClientSession]:
    """An initialized SDK ClientSession over stdio (the test peers' callbacks) that counts the
    notifications the server sends, by method."""

    async def on_message(message: Any) -> None:
        if not isinstance(message, Exception):
            notifications[str(getattr(message, "method", type(message).__name__))] += 1

    parameters = StdioServerParameters(command=argv[0], args=argv[1:], env=env, cwd=str(settings.REPO_ROOT))
    async with (
        stdio_client(parameters) as (read, write),
        ClientSession(
            read,
            write,
            read_timeout_seconds=60,
            sampling_callback=mcp_peers.sampling,
            elicitation_callback=mcp_peers.elicitation,
            list_roots_callback=mcp_peers.roots,
            message_handler=on_message,
        ) as session,
    ):
        await session.initialize()
        yield session


@dataclass
class Calls:
    """The tools/call requests of one session: each one's message is unique to the run."""

    tag: str
    made: int = 0
    failures: list[str] = field(default_factory=list)

    def message(self, index: int) -> str:
        return f"{self.tag} call {index}"

    def messages(self) -> set[str]:
        return {self.message(i) for i in range(self.made)}


async def make_calls(session: ClientSession, calls: Calls, count: int, over_s: float = 0.0) -> None:
    """`count` echo calls, one after the other, spread evenly over `over_s` (0: as fast as they go).
    A call fails if it raises or its result is not what server-everything answers direct."""
    start = time.monotonic()
    interval = over_s / count if over_s else 0.0
    for _ in range(count):
        index = calls.made
        delay = start + index * interval - time.monotonic() if interval else 0.0
        if delay > 0:
            await anyio.sleep(delay)
        message = calls.message(index)
        try:
            result = await session.call_tool(TOOL, {"message": message})
        except Exception as exc:  # noqa: BLE001 - a failed call is a figure, the run goes on
            calls.failures.append(f"call {index}: {type(exc).__name__}: {exc}")
        else:
            texts = [getattr(part, "text", None) for part in result.content]
            if result.is_error or texts != [f"Echo: {message}"]:
                calls.failures.append(f"call {index}: {result.model_dump(mode='json')}"[:300])
        calls.made += 1


def proxy_pid(server: str) -> int:
    """The proxy's python process (a child of this one, started by the SDK's stdio_client)."""
    for pid in child_pids(os.getpid()):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"mcp_proxy" in argv and server.encode() in argv:
                return pid
    raise AssertionError(f"no proxy process for {server} among this process's children")


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


# -- the rows ---------------------------------------------------------------------------------


def server_rows(client: Client, server: str, *, final: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """(event_id, event) of every stored row of `server`, read with FINAL unless told otherwise."""
    rows = client.execute(
        f"SELECT toString(event_id), payload FROM {QUALIFIED_EVENTS_TABLE}{' FINAL' if final else ''}"
        " WHERE received_at >= now() - %(window)s AND position(payload, %(marker)s) > 0",
        {"window": ROWS_WINDOW_S, "marker": json.dumps(server)},
    )
    return [(event_id, event) for event_id, text in rows if (event := json.loads(text)).get("server") == server]


@dataclass
class Expected:
    """What one session's audit events must be."""

    server: str
    session_id: str | None  # None: the server's only session
    calls: Calls
    requests: dict[str, int]  # method -> settled requests, by the proxy's count
    notifications: dict[str, int]  # method -> audited notifications, either direction
    event_ids: set[str] | None = None  # known exactly (read from the spool), or None

    @property
    def total(self) -> int:
        return len(self.event_ids) if self.event_ids is not None else self.counted

    @property
    def counted(self) -> int:
        return sum(self.requests.values()) + sum(self.notifications.values())


@dataclass
class Check:
    stored: int = 0  # distinct event ids of the session's rows
    duplicates: int = 0  # rows read with FINAL beyond one per event id
    lost: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.lost == 0


def check_rows(expected: Expected, rows: list[tuple[str, dict[str, Any]]]) -> Check:
    """Every expected event once: by id when known, else by call message, method and direction."""
    if expected.session_id is not None:
        rows = [(i, e) for i, e in rows if e.get("session_id") == expected.session_id]
    check = Check()
    ids = Counter(event_id for event_id, _ in rows)
    check.stored = len(ids)
    check.duplicates = len(rows) - len(ids)
    problems = check.problems
    if check.duplicates:
        problems.append(f"{check.duplicates} event id(s) read more than once with FINAL")
    requests_seen: Counter[tuple[Any, ...]] = Counter()
    methods: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    for _, event in rows:
        methods[event["method"]] += 1
        attributes = event.get("attributes") or {}
        if event["type"] != audit.TYPE_NOTIFICATION:
            requests_seen[(event["method"], attributes.get("direction"), attributes.get("jsonrpc_request_id"))] += 1
        if event["method"] == "tools/call":
            messages[str((attributes.get("arguments") or {}).get("message"))] += 1
    twice = [key for key, n in requests_seen.items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} request(s) with more than one event (e.g. {twice[:3]})")
    missing_calls = expected.calls.messages() - messages.keys()
    doubled_calls = [m for m, n in messages.items() if n > 1]
    if missing_calls:
        problems.append(f"{len(missing_calls)} call(s) without a stored event (e.g. {sorted(missing_calls)[:3]})")
    if doubled_calls:
        problems.append(f"{len(doubled_calls)} call(s) stored as more than one event (e.g. {doubled_calls[:3]})")
    wanted = Counter(expected.requests) + Counter(expected.notifications)
    short = {m: wanted[m] - methods[m] for m in wanted if methods[m] < wanted[m]}
    extra = {m: methods[m] - wanted[m] for m in methods if methods[m] > wanted[m]}
    if short:
        problems.append(f"events missing by method: {short}")
    if extra:
        problems.append(f"events beyond the session's, by method: {extra}")
    if expected.event_ids is not None:
        absent = expected.event_ids - ids.keys()
        foreign = ids.keys() - expected.event_ids
        check.lost = len(absent)
        if absent:
            problems.append(f"{len(absent)} spooled event(s) not in ClickHouse (e.g. {sorted(absent)[:3]})")
        if foreign:
            problems.append(f"{len(foreign)} row(s) of the session that were not in its spool")
    else:
        check.lost = max(len(missing_calls), sum(short.values()))
    return check


def wait_stored(
    client: Client, expected: Expected, timeout_s: float = DRAIN_TIMEOUT_S
) -> tuple[Check, float | None, int]:
    """Polls until every expected event is stored; the check, when it was complete (monotonic
    time, None if never) and the raw rows (copies not merged yet, no FINAL) of the session."""
    deadline = time.monotonic() + timeout_s
    while True:
        check = check_rows(expected, server_rows(client, expected.server))
        if check.complete or time.monotonic() > deadline:
            break
        time.sleep(ROWS_POLL_S)
    done_at = time.monotonic() if check.complete else None
    if done_at is not None:
        time.sleep(ROWS_POLL_S)  # a copy or an event too many would show now: read once more
        check = check_rows(expected, server_rows(client, expected.server))
    raw = [e for _, e in server_rows(client, expected.server, final=False)]
    raw_rows = sum(1 for e in raw if expected.session_id in (None, e.get("session_id")))
    return check, done_at, raw_rows


def other_databases_hint(client: Client, server: str) -> str:
    """Where missing events are when a worker started for a benchmark writes to another database."""
    database, _, table = QUALIFIED_EVENTS_TABLE.partition(".")
    found = []
    for (other,) in client.execute(
        "SELECT database FROM system.tables WHERE name = %(t)s AND database != %(d)s", {"t": table, "d": database}
    ):
        rows = client.execute(
            f"SELECT count() FROM {other}.{table} WHERE position(payload, %(m)s) > 0", {"m": json.dumps(server)}
        )
        if rows[0][0]:
            found.append(f"{rows[0][0]} in {other}.{table}")
    return f"; found instead: {', '.join(found)} (a worker writes to another database)" if found else ""


def record(results: list[Figures], figures: Figures, check: Check, expected: Expected, failures: list[str]) -> None:
    """Fill in the figures, record them for docs/reliability.md, then assert."""
    figures.sent = expected.total
    figures.stored = check.stored
    figures.accepted = check.stored  # a stored event was answered 202: the proxy retries until it is
    figures.lost = check.lost
    figures.duplicates = check.duplicates
    figures.failures = [*failures, *check.problems]
    results.append(figures)
    print(figures.line())
    assert not figures.failures, f"{figures.result}\n{figures.line()}"


def kib(n: float) -> str:
    return f"{n / 1024:.0f} KiB"


# -- the faults -------------------------------------------------------------------------------


OUTAGE_FAULT = "MCP proxy: ingest stopped 60 s during the calls"
KILL_FAULT = "MCP proxy SIGKILLed with events in its spool, restarted"


@contextlib.contextmanager
def recorded(results: list[Figures], fault: str) -> Iterator[None]:
    """A test that ends before its figures are recorded still gets a row, saying why."""
    before = len(results)
    try:
        yield
    except BaseException as exc:
        if len(results) == before:
            reason = (str(exc).strip().splitlines() or [""])[0]
            results.append(Figures(fault, SCALE, error=f"{type(exc).__name__}: {reason}"[:200]))
        raise


def test_ingest_stopped_for_60_s_during_the_mcp_calls(
    carriers: None, ingest: OwnIngest, results: list[Figures], tmp_path: Path
) -> None:
    with recorded(results, OUTAGE_FAULT):
        _ingest_outage(ingest, results, tmp_path)


def test_proxy_sigkilled_with_events_in_its_spool_then_restarted(
    carriers: None, ingest: OwnIngest, results: list[Figures], tmp_path: Path
) -> None:
    with recorded(results, KILL_FAULT):
        _proxy_sigkill(ingest, results, tmp_path)


def _ingest_outage(ingest: OwnIngest, results: list[Figures], tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    server = f"faults-outage-{run}"
    calls = Calls(f"outage {run}")
    notifications: Counter[str] = Counter()
    port = free_port()
    env = proxy_env(tmp_path / "proxy-data", ingest.url, port)
    argv = mcp_peers.proxy_argv("--name", server, upstream=mcp_peers.everything_argv())
    watch = MetricsWatch(port)
    marks: dict[str, float] = {}
    ingest.up()

    def outage(started: float) -> None:
        time.sleep(max(0.0, started + OUTAGE_AT_S - time.monotonic()))
        ingest.down()
        marks["stopped"] = time.monotonic()
        marks["calls at stop"] = calls.made
        assert not port_open(ingest.port), "the test's ingest still answered after it was stopped"
        time.sleep(max(0.0, marks["stopped"] + OUTAGE_S - time.monotonic()))
        ingest.up()
        marks["back"] = time.monotonic()
        marks["calls at recovery"] = calls.made
        watch.watch_emptying()

    async def main() -> Scrape:
        async with mcp_session(argv, env, notifications) as session:
            watch.start()
            started = time.monotonic()
            async with anyio.create_task_group() as tg:
                tg.start_soon(anyio.to_thread.run_sync, outage, started)
                await make_calls(session, calls, OUTAGE_CALLS, LOAD_S)
            marks["calls done"] = time.monotonic()
            # Before the session ends (the spool outlives it): everything posted, nothing in memory.
            return await anyio.to_thread.run_sync(
                lambda: wait_for(
                    "the proxy's spool to empty after the outage",
                    lambda: (s := Scrape.of(port)).spool_bytes == 0 and s.in_memory == 0 and s,
                    DRAIN_TIMEOUT_S,
                )
            )

    try:
        final = anyio.run(main)
    finally:
        watch.stop()
    client = new_client()
    notifications["notifications/initialized"] += 1  # the client's, once
    expected = Expected(
        server,
        None,
        calls,
        requests=final.requests_by_method(server),
        notifications={m: n for m, n in notifications.items() if audit.audited_notification(m)},
    )
    check, stored_at, raw_rows = wait_stored(client, expected)

    outage_s = marks["back"] - marks["stopped"]
    emptied = watch.emptied_at - marks["back"] if watch.emptied_at is not None else None
    figures = Figures(OUTAGE_FAULT, SCALE, raw_rows=raw_rows)
    figures.drain_s = stored_at - marks["calls done"] if stored_at is not None else None
    figures.details = (
        f"{calls.made} calls, {len(calls.failures)} failed; ingest down {outage_s:.1f} s;"
        f" spool peak {kib(watch.peak_spool_bytes)}, empty"
        + (f" {emptied:.1f} s after ingest was back" if emptied is not None else " never")
    )
    failures = []
    if calls.failures:
        failures.append(f"{len(calls.failures)} MCP call(s) failed (e.g. {calls.failures[:2]})")
    if calls.made != OUTAGE_CALLS:
        failures.append(f"{calls.made} of {OUTAGE_CALLS} calls made")
    if final.dropped:
        failures.append(f"the proxy dropped {final.dropped:.0f} audit event(s)")
    if expected.requests.get("tools/call") != OUTAGE_CALLS:
        failures.append(f"the proxy counted {expected.requests.get('tools/call')} tools/call, not {OUTAGE_CALLS}")
    if not watch.peak_spool_bytes:
        failures.append("nothing was ever spooled: the outage missed the calls")
    if not 0 < marks["calls at stop"] < marks["calls at recovery"] < OUTAGE_CALLS:
        failures.append(f"the outage did not fall within the calls: {marks}")
    if outage_s < OUTAGE_S:
        failures.append(f"ingest was down only {outage_s:.1f} s")
    if stored_at is None:
        failures.append(
            f"not every event in ClickHouse within {DRAIN_TIMEOUT_S:.0f} s" + other_databases_hint(client, server)
        )
    client.disconnect()
    record(results, figures, check, expected, failures)


def _proxy_sigkill(ingest: OwnIngest, results: list[Figures], tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    server = f"faults-sigkill-{run}"
    data_dir = tmp_path / "proxy-data"
    calls, after = Calls(f"sigkill {run}"), Calls(f"sigkill {run} restarted")
    notifications: Counter[str] = Counter()
    notifications_after: Counter[str] = Counter()
    argv = mcp_peers.proxy_argv("--name", server, upstream=mcp_peers.everything_argv())
    spooled: dict[str, dict[str, Any]] = {}  # event id -> event, as the spool held them at the kill
    state: dict[str, Any] = {}

    def on_disk() -> dict[str, dict[str, Any]]:
        events = {}
        for segment in sorted(data_dir.glob("spool/*/*.ndjson")):
            with contextlib.suppress(FileNotFoundError):
                for line in segment.read_bytes().splitlines():
                    event = json.loads(line)
                    events[event["event_id"]] = event
        return events

    # Ingest (the test's) is not started: every event of this session goes to the spool.
    async def killed_session() -> None:
        port = free_port()
        async with mcp_session(argv, proxy_env(data_dir, ingest.url, port), notifications) as session:
            await make_calls(session, calls, KILL_CALLS)
            counted = 1 + sum(n for m, n in notifications.items() if audit.audited_notification(m))

            def all_on_disk() -> Scrape | None:
                scrape = Scrape.of(port)
                total = counted + sum(scrape.requests_by_method(server).values())
                ok = scrape.in_memory == 0 and scrape.total("sentinel_proxy_events_spooled_total") == total
                return scrape if ok and len(on_disk()) == total else None

            state["scrape"] = await anyio.to_thread.run_sync(
                lambda: wait_for("every event of the session in the spool", all_on_disk, 60)
            )
            spooled.update(on_disk())
            pid = proxy_pid(server)
            state["upstream"] = child_pids(pid)
            os.kill(pid, signal.SIGKILL)
            state["killed"] = True
            await anyio.to_thread.run_sync(lambda: wait_for("the killed proxy to be gone", lambda: gone(pid), 10))

    try:
        anyio.run(killed_session)
    except Exception:
        if not state.get("killed"):
            raise
        # else: the client's transport breaking under it, after the kill
    assert state.get("killed"), f"the proxy was not killed: {state}"
    for pid in state["upstream"]:  # server-everything sees its stdin close; it must not linger
        with contextlib.suppress(AssertionError):
            wait_for("the killed proxy's upstream to exit", lambda pid=pid: gone(pid), 10)
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)

    session_ids = {event["session_id"] for event in spooled.values()}
    assert len(session_ids) == 1, f"the spool holds events of {len(session_ids)} sessions"
    scrape: Scrape = state["scrape"]
    notifications["notifications/initialized"] += 1
    expected = Expected(
        server,
        session_ids.pop(),
        calls,
        requests=scrape.requests_by_method(server),
        notifications={m: n for m, n in notifications.items() if audit.audited_notification(m)},
        event_ids=set(spooled),
    )
    client = new_client()
    marks: dict[str, float] = {}

    # The MCP client starts its server again: a new proxy on the same data folder, ingest still
    # away at first, then back. It is named apart, so that its own session's rows are told apart
    # by name (the killed session's events keep the name they were captured with).
    restarted = f"{server}-restarted"
    argv_after = mcp_peers.proxy_argv("--name", restarted, upstream=mcp_peers.everything_argv())

    async def restarted_session() -> tuple[Check, float | None, int, Scrape]:
        port = free_port()
        async with mcp_session(argv_after, proxy_env(data_dir, ingest.url, port), notifications_after) as session:
            await make_calls(session, after, CALLS_AFTER_RESTART)
            await anyio.to_thread.run_sync(ingest.up)
            marks["back"] = time.monotonic()
            outcome = await anyio.to_thread.run_sync(wait_stored, client, expected)
            last = await anyio.to_thread.run_sync(
                lambda: wait_for(
                    "the restarted proxy's spool to empty",
                    lambda: (s := Scrape.of(port)).spool_bytes == 0 and s.in_memory == 0 and s,
                    DRAIN_TIMEOUT_S,
                )
            )
            return (*outcome, last)

    check, stored_at, raw_rows, last = anyio.run(restarted_session)
    notifications_after["notifications/initialized"] += 1
    expected_after = Expected(
        restarted,
        None,
        after,
        requests=last.requests_by_method(restarted),
        notifications={m: n for m, n in notifications_after.items() if audit.audited_notification(m)},
    )
    check_after, _, _ = wait_stored(client, expected_after)
    figures = Figures(KILL_FAULT, SCALE, raw_rows=raw_rows)
    figures.drain_s = stored_at - marks["back"] if stored_at is not None else None
    figures.details = (
        f"{calls.made} calls, {len(calls.failures)} failed; {len(spooled)} events in the spool at the kill,"
        f" {kib(scrape.spool_bytes)}; {raw_rows} rows before FINAL"
    )
    failures = []
    if calls.failures:
        failures.append(f"{len(calls.failures)} MCP call(s) failed before the kill (e.g. {calls.failures[:2]})")
    if after.failures:
        failures.append(f"{len(after.failures)} MCP call(s) failed after the restart (e.g. {after.failures[:2]})")
    if scrape.total("sentinel_proxy_events_posted_total"):
        failures.append("the killed proxy posted events although its ingest was down")
    if scrape.dropped or last.dropped:
        failures.append(f"audit events dropped: {scrape.dropped:.0f} before the kill, {last.dropped:.0f} after")
    if stored_at is None:
        failures.append(
            f"not every spooled event in ClickHouse within {DRAIN_TIMEOUT_S:.0f} s"
            + other_databases_hint(client, server)
        )
    if list(data_dir.glob("spool/*/*.ndjson")):
        failures.append("segments left in the spool after the restarted proxy drained it")
    failures.extend(f"the restarted session: {problem}" for problem in check_after.problems)
    client.disconnect()
    record(results, figures, check, expected, failures)
