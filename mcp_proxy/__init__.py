"""The MCP audit proxy: in front of any MCP server, it relays every message and audits every call.

It relays at the level of JSON-RPC messages (relay.py) between two sides (side.py): newline-delimited
pipes (lines.py: its own stdio, a stdio server child), the client sessions it serves over
Streamable HTTP (http_session.py), and the `mcp` SDK's HTTP client transport to `url` servers
(sdk_side.py). A FastMCP proxy re-declares the upstream's tools, prompts and resources as handlers
of its own and forwards each through a client session: what it has no handler for (a new method, a
vendor notification, a server-initiated request it does not model) does not pass, and each call is
parsed into models and rebuilt twice. A message relay passes every request, notification, response
and error, server-initiated requests included, without knowing what they mean, and only reads the
few fields auditing needs.

The path of a call, stdio: stdio_mode -> stdio_transport (the client's pipe side) -> relay ->
upstream.connect -> child_process (the server's pipe side). HTTP: http_mode (routes, sessions) ->
http_session -> relay -> upstream.connect -> child_process or sdk_side. Beside the call: audit
(the event, masking) -> emitter (batches, retries, spool) -> ingest_client.

Runtime package: it imports `sentinel` (the shared core) and nothing above it.
"""
