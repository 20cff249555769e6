"""What the worker's main process hands a prefork child for each chunk: the message, decoded once.

Celery's main process decodes every task message (kombu's `message.payload`) and keeps the
arguments in the request dict it pickles to a child, beside the raw body. The child decodes the
body again and overwrites those arguments with its own (`celery.app.trace.fast_trace_task`): for a
chunk, the decoded events were pickled and unpickled for nothing, and crossed the pipe twice.
"""

from __future__ import annotations

from typing import Any

from celery.worker.request import Request


class ArgumentsDecodedInChild(Request):
    """A request whose arguments the main process keeps to itself (for logs and events).

    The child still gets the raw body and its content type, and decodes its arguments from it.
    A message that arrived decoded (no content type: protocol 1, converted by the main process)
    has no body to decode, and keeps its arguments in the request.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.content_type:
            del self._request_dict["args"], self._request_dict["kwargs"]
