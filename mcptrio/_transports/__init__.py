"""Transports that carry JSON-RPC messages: in-memory pairs, byte streams, stdio, HTTP."""
