"""workers.pool_request: a chunk's decoded events stay in the worker's main process, and the
child still runs the task with them, decoded from the body."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery, Task
from celery.app.trace import trace_task_ret
from celery.contrib.testing.mocks import TaskMessage

from workers.pool_request import ArgumentsDecodedInChild
from workers.tasks import insert_chunk_task

WIRE = {
    "topic": "mcp.events",
    "partition": 1,
    "first_offset": 5,
    "last_offset": 5,
    "events": [[5, "id", "", "", "t", 1, "{}"]],
}


@pytest.fixture()
def app() -> Celery:
    return Celery("pool-request-test", set_as_current=False)


def _echo_task(app: Celery, seen: list[Any]) -> Task:
    def echo(wire: dict[str, Any]) -> None:
        seen.append(wire)

    return app.task(name="echo", Request=ArgumentsDecodedInChild, ignore_result=True, shared=False)(echo)


def test_the_insert_task_uses_it() -> None:
    assert insert_chunk_task.Request is ArgumentsDecodedInChild


def test_the_request_for_the_child_carries_the_body_not_the_arguments(app: Celery) -> None:
    task = _echo_task(app, [])
    request = ArgumentsDecodedInChild(TaskMessage("echo", args=[WIRE]), app=app, task=task)
    assert "args" not in request.request_dict
    assert "kwargs" not in request.request_dict
    assert request.args == [WIRE]  # the main process still has them, for logs and events
    assert request.body  # what the child decodes


def test_the_child_decodes_the_arguments_from_the_body(app: Celery) -> None:
    seen: list[Any] = []
    task = _echo_task(app, seen)
    request = ArgumentsDecodedInChild(TaskMessage("echo", args=[WIRE]), app=app, task=task)
    # What a prefork child runs with what the main process sent it.
    failed, _, _ = trace_task_ret(
        "echo", request.id, request.request_dict, request.body, request.content_type, request.content_encoding, app=app
    )
    assert failed == 0
    assert seen == [WIRE]
