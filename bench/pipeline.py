"""Run ingest, bridge and worker under one tracing configuration at a time, and put things back after.

A tracing configuration is nothing but the OTel SDK's own environment variables: `processes.up()`
builds each process's environment from `os.environ` at start, so the harness sets the variables,
restarts the three processes, and they come up configured. Beat is stopped for the whole run and
put back after: its canary posts an event through ingest every few seconds, and one extra message
in `mcp.events` fails the Celery hop's count ("another producer?") and adds rows to every other
figure. Flower is left alone (it is not on the path of an event).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from sentinel_local import processes
from sentinel_local.stack import ServiceError

ROLES = ("ingest", "bridge", "worker")
# Not on the path of an event, but a producer into it: stopped while the harness measures.
QUIET_ROLES = ("beat",)

# Names used as JSON keys in the report.
TRACING_OFF = "tracing_off"
SAMPLED_100 = "sampled_100"
SAMPLED_10 = "sampled_10"

# Tracing off again under its own name, measured like the others (opt in with --tracing): its ratio to
# tracing_off compares two identical configurations, so how far it lies from 1.0 is how far the
# host alone moves a ratio of that run (an A/A comparison).
TRACING_OFF_CONTROL = "tracing_off_control"

_UNTRACED = {"OTEL_SDK_DISABLED": "true"}
TRACING_CONFIGS: dict[str, dict[str, str]] = {
    TRACING_OFF: _UNTRACED,
    # Exported to the local Collector (then Jaeger) at the endpoint processes.process_env() sets by default.
    SAMPLED_100: {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
    SAMPLED_10: {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    # The same environment, not a copy of it: the control stays tracing off if that ever changes.
    TRACING_OFF_CONTROL: _UNTRACED,
}
# What a run measures unless --tracing says otherwise: the configurations the targets compare.
DEFAULT_TRACING = (TRACING_OFF, SAMPLED_100, SAMPLED_10)
_TRACING_KEYS = ("OTEL_SDK_DISABLED", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG")


class Pipeline:
    """The three pipeline processes; remembers how it found them so `restore()` can put them back."""

    def __init__(self, found_env: dict[str, str | None] | None = None) -> None:
        """`found_env`: variables the harness changed before this was built, to put back too."""
        self._saved_env = {key: os.environ.get(key) for key in _TRACING_KEYS} | (found_env or {})
        self._was_running = {role: processes.get(role).pid() is not None for role in ROLES + QUIET_ROLES}
        self.tracing: str | None = None

    def pid(self, role: str) -> int | None:
        return processes.get(role).pid()

    def start(self, tracing: str, attempts: int = 2) -> float:
        """(Re)start ingest, bridge and worker with `tracing`; returns seconds taken.

        A failed start is tried once more: with SENTINEL_PORT_OFFSET=30000 every port lies in Linux's
        ephemeral range (32768-60999), where an outgoing connection can briefly hold a process's
        metrics port. Raises ServiceError when the last attempt fails.
        """
        started = time.monotonic()
        for role in QUIET_ROLES:
            processes.get(role).down()
        self._set_env(TRACING_CONFIGS[tracing])
        for attempt in range(1, attempts + 1):
            self.stop()
            try:
                _together([processes.get(role).up for role in ("worker", "bridge", "ingest")])
                break
            except ServiceError:
                if attempt == attempts:
                    raise
                time.sleep(1.0)
        self.tracing = tracing
        return time.monotonic() - started

    def stop(self) -> None:
        # Ingest first (no new events), the bridge next (it settles in-flight chunks with the
        # worker still there), the worker last.
        _together([processes.get("ingest").down, processes.get("bridge").down])
        processes.get("worker").down()
        self.tracing = None

    def restore(self) -> None:
        """Restart with the environment found at start what was running then; stop the rest."""
        self._set_env(self._saved_env, tuple(self._saved_env))
        self.stop()
        wanted = [processes.get(role).up for role in ("worker", "bridge", "ingest") if self._was_running[role]]
        _together(wanted)
        for role in QUIET_ROLES:
            if self._was_running[role]:
                processes.get(role).up()

    @staticmethod
    def _set_env(values: dict[str, str] | dict[str, str | None], keys: tuple[str, ...] = _TRACING_KEYS) -> None:
        for key in keys:
            value = values.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _together(calls: list[Callable[[], object]]) -> None:
    """Run blocking start/stop calls in parallel threads; re-raise the first failure."""
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
