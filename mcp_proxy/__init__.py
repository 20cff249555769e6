"""The MCP audit proxy: in front of any MCP server, it relays every message and audits every call.

Built on the official `mcp` SDK's transports (stdio and Streamable HTTP, client and server side),
relaying at the level of JSON-RPC messages (relay.py). A FastMCP proxy re-declares the upstream's
tools, prompts and resources as handlers of its own and forwards each through a client session:
what it has no handler for (a new method, a vendor notification, a server-initiated request it
does not model) does not pass, and each call is parsed into models and rebuilt twice. A message
relay passes every request, notification, response and error, server-initiated requests
included, without knowing what they mean, and only reads the few fields auditing needs.

Runtime package: it imports `sentinel` (the shared core) and nothing above it.
"""
