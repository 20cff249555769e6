"""Integration fixtures: the real services, brought up once per session (or reused if running)."""

from __future__ import annotations

import pytest

from sentinel_local import stack


@pytest.fixture(scope="session", autouse=True)
def services() -> None:
    try:
        stack.up(echo=False)
    except stack.ServiceError as exc:
        pytest.fail(f"{exc}\n\nStart the services with `.venv/bin/sentinel stack up` (or `make test`).", pytrace=False)
