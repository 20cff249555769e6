"""The local Jaeger runs with a garbage collector tuned for a heap that holds every stored trace."""

from __future__ import annotations

import pytest

from sentinel_local.stack.jaeger import Jaeger


def test_gc_is_tuned_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    env = Jaeger().env()
    assert env["GOGC"] == "400"
    assert env["GOMEMLIMIT"] == "4GiB"


def test_the_environment_can_override_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOGC", "100")
    monkeypatch.setenv("GOMEMLIMIT", "1GiB")
    env = Jaeger().env()
    assert (env["GOGC"], env["GOMEMLIMIT"]) == ("100", "1GiB")
