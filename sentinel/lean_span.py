"""Sentinel's per-event spans, recorded without the SDK's per-span generality.

Three spans are recorded for every event: ingest's `POST /events` and `send mcp.events`, and the
bridge's `kafka.consume`; the worker's `clickhouse.insert_batch` adds a link per event's span.
Through the SDK's tracer a span cost 40-58 us of CPU to start, end and encode for export, 19-22
here. The SDK spends the difference on what these spans
never need: attributes cleaned and bounded one by one, a lock per call, nested context managers,
a copy of the span at its end, end-of-span metrics nobody reads (no MeterProvider is set, so the
SDK's are no-ops).

What stays the SDK's: the sampler (so `OTEL_TRACES_SAMPLER` decides, parent-based as configured;
`child_of_unsampled_remote` answers for it only where its answer is known: a parent-based sampler
dropping the child of an unsampled remote parent), the id generator and the trace flags it
implies, the resource and instrumentation scope, the span processors (the batch processor and
its exporter, or a test's), and `Span`'s own status, exception and context-manager behaviour,
inherited. The result is an SDK `Span` whose exported form equals the tracer's for the same
inputs (tests/unit/test_lean_span.py compares them).

Only for spans whose attributes Sentinel writes itself: keys from `sentinel.semconv`, values that
are str, int, float or bool, at most MOST_ATTRIBUTES of them. They are stored as given, not
checked. When the configured limits could change them (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`,
`OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, or a count limit below what these spans carry), spans
are started by the SDK's tracer instead, which applies them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from contextvars import Token
from time import time_ns
from types import TracebackType
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, Span, SpanLimits, Tracer, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

from sentinel import propagation
from sentinel.telemetry import TRACER_NAME, tracer

log = logging.getLogger(__name__)

# The most attributes (or, for an exception event, event attributes) a span started here carries:
# clickhouse.insert_batch has 14.
MOST_ATTRIBUTES = 16
_sdk: tuple[TracerProvider, Tracer | None] | None = None
_UNSET = Status(StatusCode.UNSET)


class LeanSpan(Span):
    """An SDK span built directly: attributes in a plain dict, no lock (a span is used by the one
    thread that started it), handed to the processors itself at its end."""

    # The inherited set_status and update_name check for an ended span under this lock; one
    # thread uses a span, so it need not be a real one.
    _lock = nullcontext()

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        sdk_tracer: Tracer,
    ) -> None:
        # Span.__init__ is bypassed on purpose: these are the fields ReadableSpan and the inherited
        # methods (set_status, record_exception, __exit__) read.
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes = attributes
        self._events: list[Event] | tuple[()] = ()
        self._links: list[trace.Link] | tuple[()] = ()
        self._resource = sdk_tracer.resource
        self._instrumentation_info = sdk_tracer.instrumentation_info
        self._instrumentation_scope = sdk_tracer._instrumentation_scope
        self._span_processor = sdk_tracer.span_processor
        self._status = _UNSET
        self._record_exception = True
        self._set_status_on_exception = True
        self._start_time = time_ns()
        self._end_time: int | None = None

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        if self._end_time is None:
            self._attributes.update(attributes)
        else:
            log.warning("Setting attribute on ended span.")

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if self._end_time is None:
            self._attributes[key] = value
        else:
            log.warning("Setting attribute on ended span.")

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self._end_time is not None:
            log.warning("Calling add_event() on an ended span.")
            return
        if not self._events:
            self._events = []
        self._events.append(Event(name, attributes, time_ns() if timestamp is None else timestamp))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        """As the SDK's, without its limit: the caller keeps to `span_limits().max_links`."""
        if self._end_time is not None:
            log.warning("Calling add_link() on an ended span.")
            return
        if _kept_by_sdk(context, attributes):
            if not self._links:
                self._links = []
            self._links.append(trace.Link(context, attributes))

    def add_links(self, links: Sequence[trace.Link]) -> None:
        """`add_link` for links already built: kept as given, not rebuilt one by one."""
        if self._end_time is not None:
            log.warning("Calling add_link() on an ended span.")
            return
        kept = [link for link in links if _kept_by_sdk(link.context, link.attributes)]
        if kept:
            self._links = [*self._links, *kept]

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            log.warning("Calling end() on an ended span.")
            return
        self._end_time = time_ns() if end_time is None else end_time
        # The span itself, not a copy: nothing changes it once ended.
        self._span_processor.on_end(self)


def _kept_by_sdk(context: SpanContext, attributes: types.Attributes) -> bool:
    """The SDK's own test in `Span.add_link`: a link to nothing, saying nothing, is dropped."""
    return bool(context.is_valid or attributes or context.trace_state)


def add_links(span: trace.Span, links: Sequence[trace.Link]) -> None:
    """Add `links` to `span`: a LeanSpan keeps the Link objects given, any other span is handed
    each one's context and attributes (the SDK's span builds its own Link from them)."""
    if isinstance(span, LeanSpan):
        span.add_links(links)
        return
    for link in links:
        span.add_link(link.context, link.attributes)


def start_span(
    name: str,
    *,
    kind: SpanKind,
    attributes: dict[str, Any],
    context: Context | None = None,
) -> trace.Span:
    """A span as `tracer().start_span(name, context, kind, attributes)` would start it: recording
    when sampled, a NonRecordingSpan carrying the new context when not, and the API's own answer
    when no SDK is installed (tracing off). As in the SDK, the span keeps the attributes the
    sampler returns (the given ones, for the SDK's samplers)."""
    sdk = _sdk_tracer()
    if sdk is None:
        return tracer().start_span(name, context=context, kind=kind, attributes=attributes)
    parent = trace.get_current_span(context).get_span_context()
    if not parent.is_valid:
        parent = None
        trace_id = sdk.id_generator.generate_trace_id()
        random_trace_id = sdk.id_generator.is_trace_id_random()
    else:
        trace_id = parent.trace_id
        random_trace_id = parent.trace_flags.random_trace_id
    sampling = sdk.sampler.should_sample(context, trace_id, name, kind, attributes, ())
    flags = TraceFlags.SAMPLED if sampling.decision.is_sampled() else TraceFlags.DEFAULT
    if random_trace_id:
        flags |= TraceFlags.RANDOM_TRACE_ID
    span_context = SpanContext(
        trace_id,
        sdk.id_generator.generate_span_id(),
        is_remote=False,
        trace_flags=TraceFlags(flags),
        trace_state=sampling.trace_state,
    )
    if not sampling.decision.is_recording():
        return NonRecordingSpan(span_context)
    span = LeanSpan(name, span_context, parent, kind, dict(sampling.attributes), sdk)
    sdk.span_processor.on_start(span, parent_context=context)
    return span


def child_of_unsampled_remote(traceparent: bytes) -> str | None:
    """The traceparent of the span `start_span` would start, and not record, under the remote
    parent `traceparent` (plain, valid and not sampled: `propagation.plain_unsampled`), or None
    when only starting it can tell (no SDK tracer, or a sampler that may record such a child).

    The SDK's parent-based samplers, the default and `parentbased_traceidratio`, drop a child of an
    unsampled remote parent unless configured otherwise; the span is then a NonRecordingSpan with
    a new span id in the parent's trace, its sampled flag clear and the random-trace-id flag as
    the parent's. Said directly, the bridge skips the context, the sampler and the span object
    for each such message run: 28 -> 14 us per message at 10% sampling.
    """
    sdk = _sdk_tracer()
    if sdk is None or not _drops_unsampled_remote_children(sdk.sampler):
        return None
    return propagation.unsampled_child_traceparent(traceparent, sdk.id_generator.generate_span_id())


def _drops_unsampled_remote_children(sampler: Sampler) -> bool:
    # A private attribute of ParentBased: if a later SDK renames it, the answer is False and every
    # span is started through the sampler again.
    return isinstance(sampler, ParentBased) and getattr(sampler, "_remote_parent_not_sampled", None) is ALWAYS_OFF


class as_current:
    """`with as_current(span):` what `tracer.start_as_current_span` does after starting a span,
    without its two generator-based context managers: `span` is current inside the block, and
    on leaving it an escaping exception is recorded and sets ERROR, then the span ends."""

    __slots__ = ("_record_exception", "_set_status_on_exception", "_span", "_token")

    def __init__(
        self, span: trace.Span, *, record_exception: bool = True, set_status_on_exception: bool = True
    ) -> None:
        self._span = span
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception
        self._token: Token[Context] | None = None

    def __enter__(self) -> trace.Span:
        self._token = context_api.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            context_api.detach(self._token)
        span = self._span
        if exc is not None and span.is_recording():
            if self._record_exception:
                span.record_exception(exc)
            if self._set_status_on_exception:
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()


def _sdk_tracer() -> Tracer | None:
    """The SDK tracer behind `tracer()`, or None when spans are to be started by `tracer()`
    itself: no SDK provider installed, the tracer disabled by a configurator, or span limits
    that would change what a lean span stores as given."""
    global _sdk
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        return None
    if _sdk is None or _sdk[0] is not provider:
        sdk = provider.get_tracer(TRACER_NAME)
        _sdk = (provider, sdk if isinstance(sdk, Tracer) and limits_keep_values(sdk._span_limits) else None)
    sdk = _sdk[1]
    return sdk if sdk is not None and sdk._is_enabled() else None


def limits_keep_values(limits: SpanLimits) -> bool:
    """Whether `limits` leave every attribute of a span started here as it was given."""
    return (
        limits.max_attribute_length is None
        and limits.max_span_attribute_length is None
        # None: no limit (SpanLimits.UNSET).
        and all(n is None or n >= MOST_ATTRIBUTES for n in (limits.max_span_attributes, limits.max_event_attributes))
    )
