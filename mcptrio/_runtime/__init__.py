"""The transport interface, the peer that runs one connection, and task-group helpers."""
