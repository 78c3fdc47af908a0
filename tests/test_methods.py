"""Tests for the method table in mcptrio._protocol.methods (and the request strategies on it)."""

from __future__ import annotations

from typing import Any, get_args

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcptrio import types as t
from mcptrio._protocol.converter import from_wire, wire_name
from mcptrio._protocol.jsonrpc import Request, decode, encode
from mcptrio._protocol.methods import (
    CACHEABLE_METHODS,
    METHODS,
    MRTR_METHODS,
    MethodSpec,
    method_exists,
    method_spec,
    methods_for,
    name_source,
)
from mcptrio._protocol.versions import (
    LEGACY_VERSIONS,
    META_CLIENT_CAPABILITIES,
    META_PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
)
from mcptrio.testing._strategies import mcp_requests

# The request and notification unions of each schema.ts, by direction.
_CLIENT_REQUESTS_2024 = {
    "ping",
    "initialize",
    "completion/complete",
    "logging/setLevel",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "tools/call",
    "tools/list",
}
_SERVER_REQUESTS_2024 = {"ping", "sampling/createMessage", "roots/list"}
_CLIENT_NOTIFICATIONS_2024 = {
    "notifications/cancelled",
    "notifications/progress",
    "notifications/initialized",
    "notifications/roots/list_changed",
}
_SERVER_NOTIFICATIONS_2024 = {
    "notifications/cancelled",
    "notifications/progress",
    "notifications/message",
    "notifications/resources/updated",
    "notifications/resources/list_changed",
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
}
_TASK_REQUESTS = {"tasks/get", "tasks/result", "tasks/list", "tasks/cancel"}
_BY_VERSION: dict[str, dict[str, set[str]]] = {
    "2024-11-05": {
        "client_requests": _CLIENT_REQUESTS_2024,
        "server_requests": _SERVER_REQUESTS_2024,
        "client_notifications": _CLIENT_NOTIFICATIONS_2024,
        "server_notifications": _SERVER_NOTIFICATIONS_2024,
    },
    "2025-03-26": {
        "client_requests": _CLIENT_REQUESTS_2024,
        "server_requests": _SERVER_REQUESTS_2024,
        "client_notifications": _CLIENT_NOTIFICATIONS_2024,
        "server_notifications": _SERVER_NOTIFICATIONS_2024,
    },
    "2025-06-18": {
        "client_requests": _CLIENT_REQUESTS_2024,
        "server_requests": _SERVER_REQUESTS_2024 | {"elicitation/create"},
        "client_notifications": _CLIENT_NOTIFICATIONS_2024,
        "server_notifications": _SERVER_NOTIFICATIONS_2024,
    },
    "2025-11-25": {
        "client_requests": _CLIENT_REQUESTS_2024 | _TASK_REQUESTS,
        "server_requests": _SERVER_REQUESTS_2024 | {"elicitation/create"} | _TASK_REQUESTS,
        "client_notifications": _CLIENT_NOTIFICATIONS_2024 | {"notifications/tasks/status"},
        "server_notifications": _SERVER_NOTIFICATIONS_2024
        | {"notifications/elicitation/complete", "notifications/tasks/status"},
    },
    "2026-07-28": {
        "client_requests": {
            "server/discover",
            "completion/complete",
            "prompts/get",
            "prompts/list",
            "resources/list",
            "resources/templates/list",
            "resources/read",
            "subscriptions/listen",
            "tools/call",
            "tools/list",
            # the io.modelcontextprotocol/tasks extension
            "tasks/get",
            "tasks/update",
            "tasks/cancel",
        },
        "server_requests": set(),
        "client_notifications": {"notifications/cancelled"},
        "server_notifications": {
            "notifications/cancelled",
            "notifications/progress",
            "notifications/message",
            "notifications/resources/updated",
            "notifications/resources/list_changed",
            "notifications/tools/list_changed",
            "notifications/prompts/list_changed",
            "notifications/subscriptions/acknowledged",
            "notifications/tasks/status",
        },
    },
}


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_each_revision_has_exactly_its_schema_methods(version: str) -> None:
    expected = _BY_VERSION[version]
    specs = methods_for(version)
    requests = {s.method for s in specs if s.kind == "request"}
    notifications = {s.method for s in specs if s.kind == "notification"}
    assert requests == expected["client_requests"] | expected["server_requests"]
    assert notifications == expected["client_notifications"] | expected["server_notifications"]
    for spec in specs:
        assert method_exists(spec.method, version)
        client_side = spec.method in expected["client_requests"] | expected["client_notifications"]
        server_side = spec.method in expected["server_requests"] | expected["server_notifications"]
        if version == "2026-07-28" and spec.method == "notifications/cancelled":
            continue  # the server only uses it to end a listen stream
        sender = "both" if client_side and server_side else "client" if client_side else "server"
        assert spec.sender == sender, (version, spec.method)


def test_every_method_of_every_revision_is_in_the_table() -> None:
    union = set()
    for sets in _BY_VERSION.values():
        for names in sets.values():
            union |= names
    assert set(METHODS) == union


@pytest.mark.parametrize(
    ("method", "versions"),
    [
        ("ping", LEGACY_VERSIONS),
        ("initialize", LEGACY_VERSIONS),
        ("logging/setLevel", LEGACY_VERSIONS),
        ("resources/subscribe", LEGACY_VERSIONS),
        ("notifications/roots/list_changed", LEGACY_VERSIONS),
        ("server/discover", ("2026-07-28",)),
        ("subscriptions/listen", ("2026-07-28",)),
        ("elicitation/create", ("2025-06-18", "2025-11-25")),
        ("notifications/elicitation/complete", ("2025-11-25",)),
        ("completion/complete", SUPPORTED_VERSIONS),
        ("tools/call", SUPPORTED_VERSIONS),
        ("tasks/list", ("2025-11-25",)),
        ("tasks/result", ("2025-11-25",)),
        ("tasks/get", ("2025-11-25", "2026-07-28")),
        ("tasks/update", ("2026-07-28",)),
    ],
)
def test_method_versions(method: str, versions: tuple[str, ...]) -> None:
    spec = METHODS[method]
    assert spec.versions == versions
    for version in SUPPORTED_VERSIONS:
        assert method_exists(method, version) == (version in versions)


def test_unknown_methods_and_versions() -> None:
    assert method_spec("tools/frobnicate") is None
    assert not method_exists("tools/frobnicate", "2025-11-25")
    assert not method_exists("tools/list", "2099-01-01")
    assert not method_exists("tools/list", "1999-01-01")
    assert methods_for("2099-01-01") == ()


def test_2026_progress_flows_from_server_to_client_only() -> None:
    assert METHODS["notifications/progress"].sender == "both"
    modern = method_spec("notifications/progress", "2026-07-28")
    assert modern is not None and modern.sender == "server"
    assert modern.versions == ("2026-07-28",)


def test_2026_tasks_methods_use_the_extension_shapes() -> None:
    legacy = method_spec("tasks/get", "2025-11-25")
    modern = method_spec("tasks/get", "2026-07-28")
    assert legacy is METHODS["tasks/get"]
    assert legacy is not None and modern is not None
    assert (legacy.sender, legacy.result_type) == ("both", t.GetTaskResult)
    assert (modern.sender, modern.result_type) == ("client", t.DetailedTask)
    assert modern.capability == ("server", "extensions", t.TASKS_EXTENSION)
    cancel = method_spec("tasks/cancel", "2026-07-28")
    assert cancel is not None and cancel.result_type is t.EmptyResult
    status = method_spec("notifications/tasks/status", "2026-07-28")
    assert status is not None and status.params_type is t.DetailedTask
    assert method_spec("tasks/update", "2026-07-28") is METHODS["tasks/update"]


@pytest.mark.parametrize("spec", list(METHODS.values()), ids=list(METHODS))
def test_spec_types_and_capabilities_are_consistent(spec: MethodSpec) -> None:
    assert spec.kind in ("request", "notification")
    assert spec.sender in ("client", "server", "both")
    assert spec.versions and set(spec.versions) <= set(SUPPORTED_VERSIONS)
    assert list(spec.versions) == sorted(spec.versions)
    params = get_args(spec.params_type) or (spec.params_type,)
    assert all(attrs.has(p) and getattr(t, p.__name__) is p for p in params)
    if spec.kind == "notification":
        assert spec.result_type is None
    elif spec.method != "tasks/result":  # its result is the original request's
        assert attrs.has(spec.result_type)
        assert getattr(t, spec.result_type.__name__) is spec.result_type
    if spec.capability is not None:
        side, member, *rest = spec.capability
        assert side in ("server", "client", "receiver")
        caps = t.ClientCapabilities if side == "client" else t.ServerCapabilities
        names = {wire_name(caps, f.name) for f in attrs.fields(caps)}
        assert member in names
        if rest and member in ("resources", "prompts", "tools", "roots", "elicitation"):
            sub = {"resources": t.ResourcesCapability, "prompts": t.PromptsCapability}.get(member)
            sub = (
                sub
                or {
                    "tools": t.ToolsCapability,
                    "roots": t.RootsCapability,
                    "elicitation": t.ElicitationCapability,
                }[member]
            )
            assert rest[0] in {wire_name(sub, f.name) for f in attrs.fields(sub)}


def test_capabilities_of_core_features() -> None:
    assert METHODS["tools/call"].capability == ("server", "tools")
    assert METHODS["resources/subscribe"].capability == ("server", "resources", "subscribe")
    assert METHODS["sampling/createMessage"].capability == ("client", "sampling")
    assert METHODS["roots/list"].capability == ("client", "roots")
    assert METHODS["elicitation/create"].capability == ("client", "elicitation")
    assert METHODS["logging/setLevel"].capability == ("server", "logging")
    assert METHODS["completion/complete"].capability == ("server", "completions")
    assert METHODS["ping"].capability is None
    assert METHODS["initialize"].capability is None
    assert {m for m, s in METHODS.items() if s.input_request} == {
        "sampling/createMessage",
        "roots/list",
        "elicitation/create",
    }


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        METHODS["x"] = METHODS["ping"]  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        METHODS["ping"].method = "pong"  # type: ignore[misc]


# --- request strategies ------------------------------------------------------------------


def _decode_request(request: Request) -> Request:
    decoded = decode(encode(request))
    assert decoded == request
    assert isinstance(decoded, Request)
    return decoded


@settings(max_examples=60, deadline=None)
@given(mcp_requests("legacy"))
def test_legacy_requests_are_valid(request: Request) -> None:
    request = _decode_request(request)
    versions = [v for v in LEGACY_VERSIONS if method_exists(request.method, v)]
    assert versions
    spec = method_spec(request.method, versions[-1])
    assert spec is not None and spec.kind == "request"
    params = from_wire(spec.params_type, request.params or {})
    for name in ("input_responses", "request_state"):
        assert getattr(params, name, None) is None


@settings(max_examples=60, deadline=None)
@given(mcp_requests("modern"))
def test_modern_requests_carry_the_required_meta(request: Request) -> None:
    request = _decode_request(request)
    spec = method_spec(request.method, "2026-07-28")
    assert spec is not None and spec.kind == "request" and spec.sender != "server"
    assert request.params is not None
    meta = request.params["_meta"]
    assert meta[META_PROTOCOL_VERSION] == "2026-07-28"
    from_wire(t.ClientCapabilities, meta[META_CLIENT_CAPABILITIES])
    params = from_wire(spec.params_type, request.params)
    assert getattr(params, "task", None) is None


@settings(max_examples=30, deadline=None)
@given(mcp_requests("2025-06-18", sender="server"))
def test_requests_of_one_revision_and_sender(request: Request) -> None:
    assert request.method in {"ping", "sampling/createMessage", "roots/list", "elicitation/create"}
    if request.method == "elicitation/create":
        assert request.params is not None
        assert isinstance(
            from_wire(t.ElicitRequestParams, request.params), t.ElicitRequestFormParams
        )


@settings(max_examples=40, deadline=None)
@given(mcp_requests("2025-11-25", sender="server"))
def test_url_elicitations_of_2025_11_25_have_an_id(request: Request) -> None:
    if request.method == "elicitation/create":
        assert request.params is not None
        params = from_wire(t.ElicitRequestParams, request.params)
        if isinstance(params, t.ElicitRequestURLParams):
            assert params.elicitation_id is not None


@settings(max_examples=20, deadline=None)
@given(mcp_requests("2024-11-05", sender="client", method="initialize"))
def test_initialize_requests_name_their_revision(request: Request) -> None:
    assert request.params is not None
    assert request.params["protocolVersion"] == "2024-11-05"


@given(st.data())
@settings(max_examples=5)
def test_request_strategies_reject_impossible_choices(data: Any) -> None:
    with pytest.raises(ValueError):
        mcp_requests("modern", sender="server")
    with pytest.raises(ValueError):
        mcp_requests("1999-01-01")
    with pytest.raises(ValueError, match="'initialize' requests"):
        mcp_requests("2026-07-28", method="initialize")


def test_the_table_holds_the_multi_round_cacheable_and_name_facts() -> None:
    assert {"tools/call", "prompts/get", "resources/read"} == MRTR_METHODS
    assert {
        "server/discover",
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
        "resources/read",
    } == CACHEABLE_METHODS
    named = {name: name_source(name) for name in METHODS if name_source(name) is not None}
    assert named == {
        "tools/call": "name",
        "prompts/get": "name",
        "resources/read": "uri",
        "tasks/get": "taskId",
        "tasks/update": "taskId",
        "tasks/cancel": "taskId",
    }
    for name in MRTR_METHODS | CACHEABLE_METHODS | named.keys():
        spec = METHODS[name]
        assert spec.kind == "request" and spec.sender in ("client", "both"), name
    # The 2026-07-28 shapes of the tasks methods keep the facts of their legacy shapes.
    for name in ("tasks/get", "tasks/cancel"):
        modern = method_spec(name, "2026-07-28")
        assert modern is not None and modern.name_source == "taskId"
