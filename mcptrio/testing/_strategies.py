"""Hypothesis strategies for MCP wire objects and messages of both protocol eras.

Use them to property-test code that handles MCP traffic, such as interceptors:
:func:`wire_objects` draws valid :mod:`mcptrio.types` instances, :func:`mcp_requests`
draws valid request envelopes for a revision or era, :func:`jsonrpc_messages` draws any
valid JSON-RPC envelope.
"""

from __future__ import annotations

import datetime as dt
import functools
from types import NoneType, UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, overload

import attrs
from hypothesis import strategies as st

from .. import types as t
from .._intercept.actions import InterceptContext
from .._protocol.converter import to_wire
from .._protocol.jsonrpc import ErrorResponse, Message, Notification, Request, RequestId, Response
from .._protocol.methods import MethodSpec, methods_for
from .._protocol.versions import (
    LEGACY_VERSIONS,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_PROTOCOL_VERSION,
    MODERN_VERSIONS,
    SUPPORTED_VERSIONS,
    Era,
    era_of,
)

__all__ = [
    "hostile_json_values",
    "hostile_messages",
    "hostile_params",
    "intercept_contexts",
    "json_objects",
    "json_values",
    "jsonrpc_messages",
    "mcp_requests",
    "request_ids",
    "wire_objects",
]

T = TypeVar("T")

_MAX_SAFE_INT = 2**53 - 1  # integers every JSON peer reads exactly


# --- JSON --------------------------------------------------------------------------------


def json_values(*, max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Any JSON value: null, booleans, safe integers, finite floats, strings, arrays, objects."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-_MAX_SAFE_INT, _MAX_SAFE_INT)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=12)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=8), children, max_size=3)
        ),
        max_leaves=max_leaves,
    )


def json_objects(*, max_leaves: int = 8) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object with arbitrary members."""
    return st.dictionaries(st.text(max_size=8), json_values(max_leaves=max_leaves), max_size=4)


def request_ids() -> st.SearchStrategy[RequestId]:
    """A valid JSON-RPC request id: a string or a (safe) integer, never a boolean or null."""
    return st.integers(-_MAX_SAFE_INT, _MAX_SAFE_INT) | st.text(max_size=16)


# --- wire objects ------------------------------------------------------------------------

_META_KEYS = ("com.example/trace", "org.example.app/note-1", "hint")
_URIS = ("file:///tmp/a.txt", "https://example.com/r/1", "test://static-text", "mem://x")
_MIME_TYPES = ("text/plain", "application/json", "image/png", "audio/wav")
_NAMES = st.text(
    st.characters(codec="ascii", categories=("L", "N")) | st.sampled_from("_-."),
    min_size=1,
    max_size=16,
)


def _timestamps() -> st.SearchStrategy[str]:
    moments = st.datetimes(dt.datetime(2024, 1, 1), dt.datetime(2030, 1, 1))
    return moments.map(lambda m: m.replace(microsecond=0).isoformat() + "Z")


def _object_schemas() -> st.SearchStrategy[dict[str, Any]]:
    properties = st.dictionaries(
        _NAMES,
        st.sampled_from([{"type": "string"}, {"type": "integer"}, {"type": "boolean"}]),
        max_size=3,
    )
    return st.builds(lambda p: {"type": "object", "properties": p}, properties)


def _meta() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(_META_KEYS), json_values(max_leaves=3), max_size=2)


def _unit_floats() -> st.SearchStrategy[float]:
    return st.floats(0.0, 1.0)


def _counts() -> st.SearchStrategy[int]:
    return st.integers(0, 2**31)


# Values that make an object valid rather than merely well-typed, by field name; used only
# where the field's type (None aside) is the strategy's type.
_BY_FIELD_NAME: dict[str, tuple[type, st.SearchStrategy[Any]]] = {
    "meta": (dict, _meta()),
    "input_schema": (dict, _object_schemas()),
    "output_schema": (dict, _object_schemas()),
    "requested_schema": (dict, _object_schemas()),
    "uri": (str, st.sampled_from(_URIS)),
    "src": (str, st.sampled_from(("https://example.com/icon.png", "data:image/png;base64,AAAA"))),
    "url": (str, st.sampled_from(("https://example.com/authorize", "https://example.com/pay"))),
    "website_url": (str, st.just("https://example.com")),
    "uri_template": (str, st.sampled_from(("file:///{path}", "test://template/{id}/data"))),
    "mime_type": (str, st.sampled_from(_MIME_TYPES)),
    "created_at": (str, _timestamps()),
    "last_updated_at": (str, _timestamps()),
    "last_modified": (str, _timestamps()),
    "protocol_version": (str, st.sampled_from(SUPPORTED_VERSIONS)),
    "name": (str, _NAMES),
    "supported_versions": (
        list,
        st.lists(st.sampled_from(SUPPORTED_VERSIONS), min_size=1, unique=True),
    ),
    "priority": (float, _unit_floats()),
    "cost_priority": (float, _unit_floats()),
    "speed_priority": (float, _unit_floats()),
    "intelligence_priority": (float, _unit_floats()),
    "progress": (float, st.floats(0.0, 1e9)),
    "size": (int, _counts()),
    "total": (int, _counts()),
    "ttl": (int, _counts()),
    "ttl_ms": (int, _counts()),
    "poll_interval": (int, _counts()),
    "poll_interval_ms": (int, _counts()),
    "max_tokens": (int, st.integers(1, 2**20)),
}


def _union_args(tp: Any) -> tuple[Any, ...]:
    if isinstance(tp, UnionType) or get_origin(tp) is Union:
        return get_args(tp)
    return ()


@functools.cache
def _for_type(tp: Any) -> st.SearchStrategy[Any]:
    if tp is Any:
        return json_values()
    if tp is str:
        return st.text(max_size=16)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-_MAX_SAFE_INT, _MAX_SAFE_INT)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp is bytes:
        return st.binary(max_size=24)
    origin = get_origin(tp)
    if origin is Literal:
        return st.sampled_from(get_args(tp))
    if origin is list:
        return st.lists(_for_type(get_args(tp)[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(st.text(max_size=8), _for_type(get_args(tp)[1]), max_size=3)
    args = _union_args(tp)
    if args:
        return st.one_of([st.none() if a is NoneType else _for_type(a) for a in args])
    if isinstance(tp, type) and attrs.has(tp):
        return _for_class(tp)
    raise TypeError(f"no strategy for {tp!r}")


def _base_type(tp: Any) -> Any:
    args = [a for a in _union_args(tp) if a is not NoneType]
    base = args[0] if len(args) == 1 else tp
    return get_origin(base) or base


def _for_field(field: attrs.Attribute[Any]) -> st.SearchStrategy[Any]:
    field_type: Any = field.type  # already resolved by _for_class
    if field.default is not attrs.NOTHING and field.default is not None:
        return st.just(field.default)  # a discriminator
    kind, strategy = _BY_FIELD_NAME.get(field.name, (None, None))
    if strategy is None or _base_type(field_type) is not kind:
        return _for_type(field_type)
    if field.default is None or NoneType in _union_args(field_type):
        return st.none() | strategy
    return strategy


def _for_class(cls: Any) -> st.SearchStrategy[Any]:
    attrs.resolve_types(cls)
    fields = {field.name: _for_field(field) for field in attrs.fields(cls)}
    return st.builds(cls, **fields)


@overload
def wire_objects(cls: type[T]) -> st.SearchStrategy[T]: ...
@overload
def wire_objects(cls: Any) -> st.SearchStrategy[Any]: ...
def wire_objects(cls: Any) -> st.SearchStrategy[Any]:
    """Valid instances of a :mod:`mcptrio.types` class or union alias (e.g. ``ContentBlock``)."""
    return _for_type(cls)


# --- JSON-RPC envelopes ------------------------------------------------------------------

_KNOWN_METHODS = st.sampled_from(("tools/call", "ping", "notifications/progress", "x/custom"))
_METHOD_NAMES = _KNOWN_METHODS | st.text(min_size=1, max_size=24)


def jsonrpc_messages() -> st.SearchStrategy[Message]:
    """Any valid JSON-RPC envelope: request, notification, response or error response."""
    params = st.none() | json_objects()
    return st.one_of(
        st.builds(Request, request_ids(), _METHOD_NAMES, params),
        st.builds(Notification, _METHOD_NAMES, params),
        st.builds(Response, request_ids(), json_objects()),
        st.builds(
            ErrorResponse,
            st.none() | request_ids(),
            st.integers(-(2**31), 2**31),
            st.text(max_size=24),
            json_values(max_leaves=3),
        ),
    )


# --- MCP requests ------------------------------------------------------------------------

# Fields that a request may only carry in some revisions.
_MODERN_ONLY_FIELDS = ("input_responses", "request_state")
_TASK_AUGMENTATION_VERSIONS = ("2025-11-25",)


def _fit_to_version(params: Any, version: str) -> Any:
    changes: dict[str, Any] = {}
    names = {field.name for field in attrs.fields(type(params))}
    if era_of(version) is Era.LEGACY:
        changes.update({name: None for name in _MODERN_ONLY_FIELDS if name in names})
    if "task" in names and version not in _TASK_AUGMENTATION_VERSIONS:
        changes["task"] = None
    if "elicitation_id" in names:
        # Required in 2025-11-25, unknown elsewhere.
        if version != "2025-11-25":
            changes["elicitation_id"] = None
        elif params.elicitation_id is None:
            changes["elicitation_id"] = "elicitation-1"
    if isinstance(params, t.InitializeRequestParams):
        changes["protocol_version"] = version
    return attrs.evolve(params, **changes) if changes else params


def _modern_meta() -> st.SearchStrategy[dict[str, Any]]:
    capabilities = wire_objects(t.ClientCapabilities).map(to_wire)
    client_info = st.none() | wire_objects(t.Implementation).map(to_wire)

    def build(caps: dict[str, Any], info: dict[str, Any] | None) -> dict[str, Any]:
        meta: dict[str, Any] = {
            META_PROTOCOL_VERSION: MODERN_VERSIONS[-1],
            META_CLIENT_CAPABILITIES: caps,
        }
        if info is not None:
            meta[META_CLIENT_INFO] = info
        return meta

    return st.builds(build, capabilities, client_info)


def _params_type(spec: MethodSpec, version: str) -> Any:
    if spec.method == "elicitation/create" and version == "2025-06-18":
        return t.ElicitRequestFormParams  # URL mode arrived in 2025-11-25
    return spec.params_type


@functools.cache
def _request_for(spec: MethodSpec, version: str) -> st.SearchStrategy[Request]:
    objects = wire_objects(_params_type(spec, version)).map(lambda p: _fit_to_version(p, version))
    wire = objects.map(to_wire)
    if era_of(version) is Era.MODERN:

        def with_meta(params: dict[str, Any], required: dict[str, Any]) -> dict[str, Any]:
            return {**params, "_meta": {**params.get("_meta", {}), **required}}

        params: st.SearchStrategy[dict[str, Any] | None] = st.builds(
            with_meta, wire, _modern_meta()
        )
    else:
        # Legacy requests whose params are all optional may leave them out entirely.
        params = wire.flatmap(lambda p: (st.just(p) | st.none()) if not p else st.just(p))
    return st.builds(Request, request_ids(), st.just(spec.method), params)


@functools.cache
def _request_specs(
    version: str, sender: str | None, method: str | None = None
) -> tuple[MethodSpec, ...]:
    modern = era_of(version) is Era.MODERN
    return tuple(
        spec
        for spec in methods_for(version)
        if spec.kind == "request"
        and (sender is None or spec.sender in (sender, "both"))
        and (method is None or spec.method == method)
        and not (modern and spec.sender == "server")
    )


@functools.cache
def _requests_in(
    version: str, sender: str | None, method: str | None = None
) -> st.SearchStrategy[Request]:
    specs = _request_specs(version, sender, method)
    return st.one_of([_request_for(spec, version) for spec in specs])


def _versions(era: Era | str | None) -> tuple[str, ...]:
    if era is None:
        return SUPPORTED_VERSIONS
    if era in (Era.LEGACY, "legacy"):
        return LEGACY_VERSIONS
    if era in (Era.MODERN, "modern"):
        return MODERN_VERSIONS
    if era in SUPPORTED_VERSIONS:
        return (str(era),)
    raise ValueError(f"era must be 'legacy', 'modern', an Era or a revision, got {era!r}")


def mcp_requests(
    era: Era | str | None = None,
    *,
    sender: Literal["client", "server"] | None = None,
    method: str | None = None,
) -> st.SearchStrategy[Request]:
    """Valid MCP request envelopes (method and params) for an era or a single revision.

    ``era`` is ``"legacy"``, ``"modern"``, an :class:`~mcptrio._protocol.versions.Era`, one revision
    such as ``"2025-06-18"``, or None for all. Modern requests carry the required
    ``_meta`` protocol version and client capabilities. ``sender`` limits the requests
    to those one side may send (2026-07-28 servers send none); ``method`` to one method.
    """
    versions = [v for v in _versions(era) if _request_specs(v, sender, method)]
    if not versions:
        what = f"{method!r} requests" if method else "requests"
        raise ValueError(f"no {sender or 'client or server'} {what} exist in {era}")
    return st.sampled_from(versions).flatmap(lambda v: _requests_in(v, sender, method))


# --- hostile input -----------------------------------------------------------------------

# Members MCP methods read somewhere; a hostile message puts wrong values in them.
_PARAM_NAMES = (
    "_meta",
    "name",
    "arguments",
    "uri",
    "cursor",
    "level",
    "ref",
    "argument",
    "context",
    "requestId",
    "progressToken",
    "progress",
    "total",
    "message",
    "reason",
    "taskId",
    "task",
    "requestState",
    "inputResponses",
    "notifications",
    "protocolVersion",
    "capabilities",
    "clientInfo",
)


def _nest(depth: int, kind: str, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "array" else {"a": value}
    return value


def hostile_json_values(*, max_depth: int = 600) -> st.SearchStrategy[Any]:
    """JSON values chosen to break careless handlers.

    Any JSON value, plus integers far beyond 64 bits, values nested up to ``max_depth``
    levels (deeper than encoders and recursive validators go), and arrays and objects
    where a handler expects a string or a number. Integers beyond 64 bits cannot be
    encoded with orjson: encode such values with the standard library's ``json``.
    """
    huge = st.integers(min_value=2**64, max_value=2**200) | st.integers(
        min_value=-(2**200), max_value=-(2**64)
    )
    deep = st.builds(
        _nest,
        st.integers(min_value=2, max_value=max_depth),
        st.sampled_from(("array", "object")),
        st.none() | st.integers() | st.text(max_size=4),
    )
    containers = st.lists(json_values(max_leaves=3), max_size=3) | json_objects(max_leaves=3)
    return st.one_of(json_values(), huge, deep, containers)


def _put(params: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of ``params`` with ``value`` at ``path`` (made of object members)."""
    out = dict(params)
    head, *rest = path
    if rest:
        inner = out.get(head)
        out[head] = _put(inner if isinstance(inner, dict) else {}, tuple(rest), value)
    else:
        out[head] = value
    return out


def _mutations(params: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    names = sorted(set(params) | set(_PARAM_NAMES))
    nested = [
        (key, inner) for key, value in params.items() if isinstance(value, dict) for inner in value
    ]
    paths: st.SearchStrategy[tuple[str, ...]] = st.sampled_from(names).map(lambda n: (n,))
    if nested:
        paths = paths | st.sampled_from(nested)
    one = st.tuples(paths, hostile_json_values())
    return st.lists(one, min_size=1, max_size=3).map(
        lambda changes: functools.reduce(lambda p, c: _put(p, c[0], c[1]), changes, params)
    )


def hostile_params(method: str, era: Era | str = Era.LEGACY) -> st.SearchStrategy[dict[str, Any]]:
    """``params`` for ``method`` with wrong values in one to three members.

    Starts from valid params of the method when it is a client request of ``era`` (a
    2026-07-28 request keeps its ``_meta`` unless a mutation hits it) and puts hostile
    values (:func:`hostile_json_values`) into its members, members of its nested objects
    and members other methods use.
    """
    try:
        valid = mcp_requests(era, sender="client", method=method).map(lambda r: r.params or {})
    except ValueError:
        valid = st.just({})
    return valid.flatmap(_mutations)


def hostile_messages(era: Era | str = Era.LEGACY) -> st.SearchStrategy[dict[str, Any]]:
    """Raw JSON-RPC requests and notifications (dicts) with hostile params.

    Covers every request and notification a client may send in ``era`` (its latest
    revision), plus an unknown method; requests carry an ``id`` from
    :func:`request_ids`. A drawn message may hold integers that only the standard
    library's ``json`` can encode.
    """
    version = _versions(era)[-1]
    modern = era_of(version) is Era.MODERN
    requests: list[str] = []
    notifications: list[str] = []
    for spec in methods_for(version):
        if spec.sender == "server" or (modern and spec.method == "initialize"):
            continue
        (requests if spec.kind == "request" else notifications).append(spec.method)
    requests.append("x/unknown")

    def request(method: str) -> st.SearchStrategy[dict[str, Any]]:
        return st.builds(
            lambda id_, p: {"jsonrpc": "2.0", "id": id_, "method": method, "params": p},
            request_ids(),
            hostile_params(method, era),
        )

    def notification(method: str) -> st.SearchStrategy[dict[str, Any]]:
        return hostile_params(method, era).map(
            lambda p: {"jsonrpc": "2.0", "method": method, "params": p}
        )

    return st.one_of([request(m) for m in requests] + [notification(m) for m in notifications])


# --- interceptor contexts ----------------------------------------------------------------


def intercept_contexts(
    messages: st.SearchStrategy[Message] | None = None,
) -> st.SearchStrategy[InterceptContext]:
    """:class:`~mcptrio.InterceptContext` objects around ``messages`` (default: any envelope).

    For property tests of interceptors: direction, era and revision, session id and
    transport vary; the kind always matches the message.
    """
    versions = st.sampled_from(SUPPORTED_VERSIONS)

    def build(
        message: Message,
        direction: Any,
        version: str | None,
        session_id: str | None,
        transport: str,
        time: float,
    ) -> InterceptContext:
        kind: Any = {
            Request: "request",
            Notification: "notification",
            Response: "response",
            ErrorResponse: "error",
        }[type(message)]
        return InterceptContext(
            message=message.to_dict(),
            direction=direction,
            kind=kind,
            era=era_of(version).value if version is not None else None,
            protocol_version=version,
            session_id=session_id,
            session=None,
            principal=None,
            transport=transport,
            http=None,
            time=time,
        )

    return st.builds(
        build,
        messages if messages is not None else jsonrpc_messages(),
        st.sampled_from(["client->server", "server->client"]),
        st.none() | versions,
        st.none() | st.uuids().map(lambda u: u.hex),
        st.sampled_from(["memory", "stdio", "http"]),
        st.floats(min_value=0, max_value=1e9),
    )
