"""The sans-IO core: JSON-RPC envelopes, MCP wire types and their converter, protocol revisions,
the method table, SSE and line framing. Never imports trio, never awaits.
"""
