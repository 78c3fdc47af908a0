"""A stdio MCP server that answers with malformed messages, for the client's robustness tests.

It reads one JSON-RPC message per line (plain blocking I/O, no mcptrio) and:

- answers ``initialize`` properly, but first writes garbage: a line that is not JSON,
  notifications with wrong-typed ``requestId``/``progressToken``/``_meta``, a response to
  an id never used, an error response without an id, and requests the client has no
  handler for (with hostile params);
- answers ``tools/call`` according to ``params.name``:
  ``ok`` properly; ``result-array`` with a ``result`` that is an array; ``error-mangled``
  with an ``error`` whose ``code`` is a string; ``bad-content`` with a result whose
  ``content`` is a string; ``deep`` with a result nested 300 levels deep; ``huge-int``
  with an integer beyond 64 bits in the result; ``notify-garbage`` with a batch of bad
  notifications and then a proper answer;
- answers ``ping``; ignores everything else (the answers to its own requests included).
"""

from __future__ import annotations

import json
import sys
from typing import Any


def write(value: Any) -> None:
    line = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


GARBAGE_NOTIFICATIONS: list[dict[str, Any]] = [
    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": [1, 2]}},
    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": {"a": 1}}},
    {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": {"t": 1}}},
    {
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": 1, "progress": 10**400},
    },
    {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": [], "data": 1}},
    {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info"}},
    {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": {}}},
    {"jsonrpc": "2.0", "method": "notifications/tasks/status", "params": {"taskId": [[]]}},
    {"jsonrpc": "2.0", "method": "notifications/tools/list_changed", "params": {"_meta": []}},
    {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "info", "data": deep(300)},
    },
]


def garbage() -> None:
    write("this is not JSON")
    write("[]")
    for notification in GARBAGE_NOTIFICATIONS:
        write(notification)
    write({"jsonrpc": "2.0", "id": 987654, "result": {}})
    write({"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": "who knows"}})
    write({"jsonrpc": "2.0", "id": "s1", "method": "sampling/createMessage", "params": {"x": []}})
    write({"jsonrpc": "2.0", "id": "s2", "method": "roots/list", "params": {"_meta": 5}})
    write({"jsonrpc": "2.0", "id": "s3", "method": "elicitation/create", "params": {"mode": []}})
    write({"jsonrpc": "2.0", "id": "s4", "method": "ping", "params": {"a": deep(300)}})


def answer_call(request_id: Any, name: Any) -> None:
    def result(value: Any) -> None:
        write({"jsonrpc": "2.0", "id": request_id, "result": value})

    if name == "ok":
        result({"content": [{"type": "text", "text": "fine"}]})
    elif name == "result-array":
        result([1, 2, 3])
    elif name == "error-mangled":
        write({"jsonrpc": "2.0", "id": request_id, "error": {"code": "x", "message": 5}})
    elif name == "bad-content":
        result({"content": "not a list"})
    elif name == "deep":
        result({"content": [], "structuredContent": deep(300)})
    elif name == "huge-int":
        result({"content": [{"type": "text", "text": "big"}], "structuredContent": {"n": 10**40}})
    elif name == "notify-garbage":
        for notification in GARBAGE_NOTIFICATIONS:
            write(notification)
        result({"content": [{"type": "text", "text": "after garbage"}]})


def main() -> None:
    for line in sys.stdin:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict) or "method" not in message:
            continue
        method = message["method"]
        request_id = message.get("id")
        params = message.get("params") or {}
        if method == "initialize":
            garbage()
            write(
                {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "result": {
                        "protocolVersion": params.get("protocolVersion", "2025-11-25"),
                        "capabilities": {"tools": {}, "logging": {}},
                        "serverInfo": {"name": "hostile", "version": "0"},
                    },
                }
            )
        elif method == "ping" and request_id is not None:
            write({"jsonrpc": "2.0", "id": request_id, "result": {}})
        elif method == "tools/call":
            answer_call(request_id, params.get("name"))


if __name__ == "__main__":
    main()
