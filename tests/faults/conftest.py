"""Fault-suite fixtures: the real services and pipeline processes, faults that undo themselves, the report.

Every test breaks something on purpose. What it breaks goes through `faults`, which puts it back at
teardown (service started, process running, extra process stopped) and then checks the whole stack
is healthy, so the next test, and the integration tests after this suite, start on a working stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from sentinel_local import processes, stack
from sentinel_local.processes import AppProcess
from sentinel_local.stack import Service
from tests.e2e.conftest import PIPELINE, pipeline  # noqa: F401 - the session fixture, reused as is
from tests.faults import report
from tests.faults.harness import SCALE, FaultRun, Figures
from workers.clickhouse.client import new_client
from workers.clickhouse.schema import migrate

RESULTS = pytest.StashKey[list[Figures]]()
_HOW_TO_START = "Start everything with `.venv/bin/sentinel stack up` (or `make test`), which runs the services itself."


def _healthy() -> None:
    stack.up(echo=False)
    migrate(new_client())
    for name in PIPELINE:
        processes.get(name).up()  # reuses a running one, never starts a second copy


@pytest.fixture(scope="session")
def results(request: pytest.FixtureRequest) -> Iterator[list[Figures]]:
    """Figures of every fault that ran; written into docs/reliability.md at the end of the session."""
    collected: list[Figures] = []
    request.config.stash[RESULTS] = collected
    yield collected
    report.publish(collected)


class Faults:
    """What a test breaks, and how to put it back."""

    def __init__(self, record: Callable[[Figures], None]) -> None:
        self._record = record
        self._undo: list[tuple[str, Callable[[], object]]] = []
        self._runs: list[FaultRun] = []

    def service(self, name: str) -> Service:
        """A service this stack runs (so it can stop and start it); restarted at teardown."""
        service = stack.get(name)
        if service.pid() is None:
            where = ", ".join(f"{k}={v}" for k, v in service.addresses().items())
            pytest.fail(
                f"{name} ({where}) is not run by this stack, so the fault suite cannot stop and start it. "
                f"Stop the outside {name}, then: {_HOW_TO_START}",
                pytrace=False,
            )
        self._undo.append((f"start {name}", service.up))
        return service

    def process(self, name: str) -> AppProcess:
        """A pipeline process; running again at teardown."""
        process = processes.get(name)
        self._undo.append((f"start {name}", process.up))
        return process

    def extra(self, process: AppProcess) -> AppProcess:
        """A process the test adds (a second bridge); stopped at teardown."""
        self._undo.append((f"stop {process.name}", process.down))
        return process

    def run(self, fault: str, *, duration_s: float, events: int = SCALE, ingest_affected: bool = False) -> FaultRun:
        run = FaultRun(
            fault, duration_s=duration_s, events=events, ingest_affected=ingest_affected, record=self._record
        )
        self._runs.append(run)
        return run

    def restore(self) -> None:
        for run in self._runs:
            run.abort("the test ended before its figures were verified")  # no-op once verified
        problems = []
        for what, undo in reversed(self._undo):
            try:
                undo()
            except Exception as exc:  # noqa: BLE001 - try every undo, then report them all
                problems.append(f"{what}: {exc}")
        try:
            _healthy()
        except stack.ServiceError as exc:
            problems.append(f"stack not healthy after the fault: {exc}")
        if problems:
            pytest.fail("could not restore the stack:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def faults(pipeline: None, results: list[Figures]) -> Iterator[Faults]:  # noqa: F811 - the imported fixture
    helper = Faults(results.append)
    yield helper
    helper.restore()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    collected = config.stash.get(RESULTS, [])
    if collected:
        terminalreporter.section(f"fault figures (SENTINEL_FAULT_EVENTS={SCALE}; {report.DOC} updated)")
        for figures in collected:
            terminalreporter.write_line(figures.line())
