"""Fixtures every test may use: spans recorded in memory for this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sentinel.telemetry import setup_tracing

_EXPORTER = InMemorySpanExporter()
# One provider per process (the OTel API allows setting it once); tests clear it between cases.
setup_tracing("sentinel-test", span_processor=SimpleSpanProcessor(_EXPORTER))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans of this test, in memory."""
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()
