"""The MCP client and its HTTP transport."""
