"""Span names, span attribute keys and Kafka header keys: the one place each name is spelled.

The messaging attributes follow the OTel messaging conventions v1.44, still marked Development,
so they are kept here rather than imported from `opentelemetry.semconv._incubating`, whose names
move between releases. Operators search for the span names; they stay.
"""

from __future__ import annotations

from sentinel import settings

# -- span names ----------------------------------------------------------------------------------
SPAN_INGEST = "POST /events"  # "{method} {route}", as the OTel Flask instrumentation names it
SPAN_PUBLISH = f"send {settings.EVENTS_TOPIC}"
SPAN_CONSUME = "kafka.consume"
SPAN_INSERT = "clickhouse.insert_batch"

# -- service names -------------------------------------------------------------------------------
SERVICE_INGEST = "sentinel-ingest"
SERVICE_BRIDGE = "sentinel-bridge"
SERVICE_WORKER = "sentinel-worker"
SERVICE_BEAT = "sentinel-beat"
SERVICE_FLOWER = "sentinel-flower"
SERVICE_PROXY = "sentinel-proxy"

# -- HTTP server attributes ------------------------------------------------------------------------
# The keys the OTel Flask instrumentation records on ingest's server span by default
# (OTEL_SEMCONV_STABILITY_OPT_IN unset).
HTTP_METHOD = "http.method"
HTTP_SERVER_NAME = "http.server_name"
HTTP_SCHEME = "http.scheme"
HTTP_HOST = "http.host"
HTTP_TARGET = "http.target"
HTTP_FLAVOR = "http.flavor"
HTTP_ROUTE = "http.route"
HTTP_USER_AGENT = "http.user_agent"
HTTP_STATUS_CODE = "http.status_code"
NET_HOST_NAME = "net.host.name"
NET_HOST_PORT = "net.host.port"
NET_PEER_IP = "net.peer.ip"
NET_PEER_PORT = "net.peer.port"
# The proxy emitter's client span (mcp_proxy/ingest_client.py), in the same generation of keys.
HTTP_URL = "http.url"

# -- messaging attributes (v1.44) ----------------------------------------------------------------
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_OPERATION_NAME = "messaging.operation.name"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_DESTINATION_NAME = "messaging.destination.name"
MESSAGING_DESTINATION_PARTITION_ID = "messaging.destination.partition.id"
MESSAGING_KAFKA_OFFSET = "messaging.kafka.offset"
MESSAGING_CONSUMER_GROUP_NAME = "messaging.consumer.group.name"
MESSAGING_MESSAGE_ID = "messaging.message.id"
MESSAGING_BATCH_MESSAGE_COUNT = "messaging.batch.message_count"

MESSAGING_SYSTEM_KAFKA = "kafka"

# -- batch boundaries (ours: the conventions have no first/last offset) ---------------------------
KAFKA_FIRST_OFFSET = "messaging.kafka.first_offset"
KAFKA_LAST_OFFSET = "messaging.kafka.last_offset"

# -- database attributes -------------------------------------------------------------------------
DB_SYSTEM_NAME = "db.system.name"
DB_NAMESPACE = "db.namespace"
DB_COLLECTION_NAME = "db.collection.name"
DB_OPERATION_NAME = "db.operation.name"
DB_OPERATION_BATCH_SIZE = "db.operation.batch.size"
DB_SYSTEM_CLICKHOUSE = "clickhouse"

# -- MCP attributes (OTel semantic conventions for MCP, semantic-conventions-genai) -----------------
MCP_METHOD_NAME = "mcp.method.name"
MCP_SESSION_ID = "mcp.session.id"
MCP_PROTOCOL_VERSION = "mcp.protocol.version"
MCP_RESOURCE_URI = "mcp.resource.uri"
JSONRPC_REQUEST_ID = "jsonrpc.request.id"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_PROMPT_NAME = "gen_ai.prompt.name"
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
NETWORK_TRANSPORT = "network.transport"
ERROR_TYPE = "error.type"
GEN_AI_OPERATION_EXECUTE_TOOL = "execute_tool"
# error.type of a tools/call whose result has isError (a JSON-RPC success that is a failure).
ERROR_TYPE_TOOL_ERROR = "tool_error"


def mcp_span_name(method: str, target: str | None) -> str:
    """`{mcp.method.name} {target}`, or the method alone when there is no low-cardinality target
    (a tool or prompt name; resource URIs stay out of span names, as the conventions advise)."""
    return f"{method} {target}" if target else method


# -- Sentinel's own attributes -------------------------------------------------------------------
EVENT_ID = "sentinel.event.id"
DEAD_LETTER_REASON = "sentinel.dead_letter.reason"
CHUNK_ATTEMPT = "sentinel.chunk.attempt"
BATCH_EVENTS = "sentinel.batch.event_count"  # audit events in one POST /events of the proxy's

# -- Kafka header keys ---------------------------------------------------------------------------
HEADER_TRACEPARENT = "traceparent"
HEADER_TRACESTATE = "tracestate"
HEADER_BAGGAGE = "baggage"
HEADER_EVENT_ID = "event_id"
# Dead-letter records carry the original headers plus these.
HEADER_DLQ_REASON = "dlq.reason"
HEADER_DLQ_STAGE = "dlq.stage"
HEADER_DLQ_SOURCE_TOPIC = "dlq.source.topic"
HEADER_DLQ_SOURCE_PARTITION = "dlq.source.partition"
HEADER_DLQ_SOURCE_OFFSET = "dlq.source.offset"
HEADER_DLQ_FAILED_AT = "dlq.failed_at"
DLQ_HEADERS = frozenset(
    {
        HEADER_DLQ_REASON,
        HEADER_DLQ_STAGE,
        HEADER_DLQ_SOURCE_TOPIC,
        HEADER_DLQ_SOURCE_PARTITION,
        HEADER_DLQ_SOURCE_OFFSET,
        HEADER_DLQ_FAILED_AT,
    }
)
# Set on a replayed message: where it first came from ("topic-partition-offset"), so an event
# without an event_id gets the same id on every replay and deduplicates.
HEADER_ORIGIN = "sentinel.origin"
