"""The MCP server: registries, dispatch, request context, tasks, MRTR, and the MCP-aware HTTP
endpoint.
"""
