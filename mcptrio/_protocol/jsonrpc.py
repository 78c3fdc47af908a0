"""JSON-RPC 2.0 envelopes and their codec (sans-IO, orjson).

Envelopes carry ``params`` and ``result`` as raw JSON dicts: typed MCP objects are made
from them only where a handler needs them, so proxies and tapes pass fields a newer
revision adds through untouched.
"""

from __future__ import annotations

from typing import Any, TypeAlias, TypeGuard

import attrs
import orjson

from .errors import InternalError, InvalidParams, InvalidRequest, MCPError, ParseError

__all__ = [
    "ErrorResponse",
    "InvalidMessage",
    "Message",
    "Notification",
    "Request",
    "RequestId",
    "Response",
    "decode",
    "encode",
    "encode_batch",
    "error_response",
    "MAX_PARAMS_DEPTH",
    "is_request_id",
    "malformed_response_error",
    "nested_too_deep",
    "params_too_deep",
    "message_from_dict",
    "message_to_dict",
]

RequestId: TypeAlias = int | str
JSON: TypeAlias = dict[str, Any]


@attrs.frozen(slots=True)
class Request:
    """A request: expects exactly one response with the same ``id``."""

    id: RequestId
    method: str
    params: JSON | None = None

    def to_dict(self) -> JSON:
        """The wire form of this message."""
        out: JSON = {"jsonrpc": "2.0", "id": self.id, "method": self.method}
        if self.params is not None:
            out["params"] = self.params
        return out


@attrs.frozen(slots=True)
class Notification:
    """A one-way message: the receiver must not answer."""

    method: str
    params: JSON | None = None

    def to_dict(self) -> JSON:
        """The wire form of this message."""
        out: JSON = {"jsonrpc": "2.0", "method": self.method}
        if self.params is not None:
            out["params"] = self.params
        return out


@attrs.frozen(slots=True)
class Response:
    """A successful answer to the request with the same ``id``."""

    id: RequestId
    result: JSON

    def to_dict(self) -> JSON:
        """The wire form of this message."""
        return {"jsonrpc": "2.0", "id": self.id, "result": self.result}


@attrs.frozen(slots=True)
class ErrorResponse:
    """An error answer; ``id`` is None only when the request's id could not be read."""

    id: RequestId | None
    code: int
    message: str
    data: Any = None

    def to_dict(self) -> JSON:
        """The wire form of this message."""
        error: JSON = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return {"jsonrpc": "2.0", "id": self.id, "error": error}

    def to_exception(self) -> MCPError:
        """The matching :class:`MCPError` subclass, ready to raise."""
        return MCPError.from_error(self.code, self.message, self.data)


Message: TypeAlias = Request | Notification | Response | ErrorResponse


class InvalidMessage(InvalidRequest):
    """A JSON value that is not a valid JSON-RPC message; ``request_id`` is set when readable."""

    def __init__(self, message: str, request_id: RequestId | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


def error_response(request_id: RequestId | None, exc: MCPError) -> ErrorResponse:
    """The error response that answers ``request_id`` with ``exc``."""
    return ErrorResponse(request_id, exc.code, exc.message, exc.data)


def is_request_id(value: Any) -> TypeGuard[RequestId]:
    """True if ``value`` can be a JSON-RPC request id: a string or an integer (not a bool)."""
    # bool is an int subclass, but JSON-RPC ids are strings or numbers, never true/false.
    return (type(value) is int) or isinstance(value, str)


MAX_PARAMS_DEPTH = 100
"""How many levels of arrays and objects ``params`` may nest (deeper is -32602).

Deeper values break the JSON encoder (it stops at 254 levels, and an answer that echoes
its arguments nests them further) and recursive validators long before the parser's
limit of 1024; no MCP method needs anything close.
"""

_PATH_SHOWN = 6


def nested_too_deep(value: Any, limit: int = MAX_PARAMS_DEPTH, root: str = "params") -> str | None:
    """The JSON path of the first array or object nested more than ``limit`` levels
    below ``value``, or None if there is none (iterative: no recursion limit applies)."""
    # Every request passes here, so the common case counts depths only; the path of an
    # offender is worked out by a second walk, which only refused input pays for.
    if type(value) is not dict and type(value) is not list:
        return None
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > limit:
            return _render_path(root, _path_below(value, limit))
        children = node.values() if type(node) is dict else node
        for child in children:
            if type(child) is dict or type(child) is list:
                push((child, depth + 1))
    return None


def _path_below(value: Any, limit: int) -> tuple[str | int, ...]:
    """The path of the first container nested more than ``limit`` levels below ``value``."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if len(path) > limit:
            return path
        items = node.items() if type(node) is dict else enumerate(node)
        stack.extend(
            (child, (*path, key))
            for key, child in items
            if type(child) is dict or type(child) is list
        )
    raise AssertionError("no container is nested that deep")


def params_too_deep(params: JSON | None) -> InvalidParams | None:
    """The -32602 error for ``params`` nested deeper than :data:`MAX_PARAMS_DEPTH`, or None."""
    if not params:
        return None
    path = nested_too_deep(params)
    if path is None:
        return None
    return InvalidParams(
        f"{path} is nested more than {MAX_PARAMS_DEPTH} levels deep; params may nest at most"
        f" {MAX_PARAMS_DEPTH} levels of arrays and objects"
    )


def _render_path(root: str, path: tuple[str | int, ...]) -> str:
    def part(key: str | int) -> str:
        if isinstance(key, int):
            return f"[{key}]"
        return f".{key}" if key.isidentifier() else f"[{key!r}]"

    shown = "".join(part(key) for key in path[:_PATH_SHOWN])
    more = "..." if len(path) > _PATH_SHOWN else ""
    return f"{root}{shown}{more}"


def message_from_dict(obj: Any) -> Message:
    """Validate a decoded JSON value as one JSON-RPC message.

    Raises :class:`InvalidMessage` (-32600) with the request id when it can be read.
    """
    if not isinstance(obj, dict):
        raise InvalidMessage(f"a JSON-RPC message must be a JSON object, got {_kind(obj)}")
    raw_id = obj.get("id")
    has_id = "id" in obj
    readable_id: RequestId | None = raw_id if is_request_id(raw_id) else None
    if obj.get("jsonrpc") != "2.0":
        raise InvalidMessage('the "jsonrpc" member must be exactly "2.0"', readable_id)
    method = obj.get("method")
    if method is not None:
        if not isinstance(method, str):
            raise InvalidMessage('"method" must be a string', readable_id)
        if "result" in obj or "error" in obj:
            raise InvalidMessage(
                'a message cannot carry both "method" and "result"/"error"', readable_id
            )
        params = obj.get("params")
        if params is not None and not isinstance(params, dict):
            raise InvalidMessage(f'"params" must be an object, got {_kind(params)}', readable_id)
        if not has_id:
            return Notification(method, params)
        if readable_id is None:
            raise InvalidMessage(
                f'a request "id" must be a string or an integer, got {_kind(raw_id)}'
            )
        return Request(readable_id, method, params)
    if "result" in obj:
        if "error" in obj:
            raise InvalidMessage('a response cannot carry both "result" and "error"', readable_id)
        if readable_id is None:
            raise InvalidMessage('a response "id" must be a string or an integer')
        result = obj["result"]
        if not isinstance(result, dict):
            raise InvalidMessage(f'"result" must be an object, got {_kind(result)}', readable_id)
        return Response(readable_id, result)
    if "error" in obj:
        error = obj["error"]
        if raw_id is not None and readable_id is None:
            raise InvalidMessage('an error response "id" must be a string, an integer or null')
        if (
            not isinstance(error, dict)
            or type(error.get("code")) is not int
            or not isinstance(error.get("message"), str)
        ):
            raise InvalidMessage(
                '"error" must be an object with an integer "code" and a string "message"',
                readable_id,
            )
        return ErrorResponse(readable_id, error["code"], error["message"], error.get("data"))
    raise InvalidMessage('a message needs "method", "result" or "error"', readable_id)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def decode(data: bytes | str) -> Message | list[Message | InvalidMessage]:
    """Parse one message, or a batch (a JSON array) into a list.

    A single invalid message raises; in a batch each invalid member becomes an
    :class:`InvalidMessage` in its place so the valid ones are still served.
    Raises :class:`ParseError` for bytes that are not JSON.
    """
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc}") from None
    if isinstance(obj, list):
        if not obj:
            raise InvalidMessage("an empty batch is not a valid request")
        out: list[Message | InvalidMessage] = []
        for item in obj:
            try:
                out.append(message_from_dict(item))
            except InvalidMessage as exc:
                out.append(exc)
        return out
    return message_from_dict(obj)


def malformed_response_error(obj: Any, exc: InvalidMessage) -> ErrorResponse | None:
    """For a decoded value that is a malformed *response* with a readable id: the error
    that fails the request it answers (else None).

    The requester then learns at once that the answer was unusable, rather than waiting
    for an answer that will never come.
    """
    if exc.request_id is None or not isinstance(obj, dict) or "method" in obj:
        return None
    if "result" not in obj and "error" not in obj:
        return None
    return ErrorResponse(
        exc.request_id,
        InternalError.default_code,
        f"the peer sent a malformed response: {exc.message}",
    )


def message_to_dict(message: Message) -> JSON:
    """The wire form of ``message`` as a dict."""
    return message.to_dict()


def encode(message: Message) -> bytes:
    """Serialize one message to compact JSON bytes (no trailing newline)."""
    return orjson.dumps(message.to_dict())


def encode_batch(messages: list[Message]) -> bytes:
    """Serialize a batch of messages as a JSON array."""
    return orjson.dumps([m.to_dict() for m in messages])
