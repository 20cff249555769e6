"""The MCP audit proxy: relay, audit capture, masking, emitter with spool."""
