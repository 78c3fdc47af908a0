"""Tests for the JSON-RPC envelope codec in mcptrio._protocol.jsonrpc."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcptrio._protocol.errors import (
    InvalidParams,
    InvalidRequest,
    MCPError,
    MethodNotFound,
    ParseError,
)
from mcptrio._protocol.jsonrpc import (
    ErrorResponse,
    InvalidMessage,
    Notification,
    Request,
    Response,
    decode,
    encode,
    encode_batch,
    error_response,
    message_from_dict,
    message_to_dict,
    nested_too_deep,
)
from mcptrio.testing._strategies import json_values, jsonrpc_messages, request_ids


@given(jsonrpc_messages())
def test_decode_inverts_encode(message: Any) -> None:
    assert decode(encode(message)) == message


@given(st.lists(jsonrpc_messages(), min_size=1, max_size=5))
def test_batches_round_trip_in_order(messages: list[Any]) -> None:
    assert decode(encode_batch(messages)) == messages


@given(jsonrpc_messages())
def test_wire_form_is_compact_json_rpc(message: Any) -> None:
    raw = encode(message)
    assert b"\n" not in raw
    obj = orjson.loads(raw)
    assert obj["jsonrpc"] == "2.0"
    assert obj == message_to_dict(message)
    assert message_from_dict(obj) == message


@given(request_ids())
def test_request_ids_are_strings_or_integers_never_booleans(request_id: Any) -> None:
    assert type(request_id) in (int, str)


def test_shapes_decode_to_the_right_envelope() -> None:
    assert decode(b'{"jsonrpc":"2.0","id":1,"method":"ping"}') == Request(1, "ping")
    assert decode(b'{"jsonrpc":"2.0","id":"a","method":"x","params":{"k":1}}') == Request(
        "a", "x", {"k": 1}
    )
    assert decode(b'{"jsonrpc":"2.0","method":"notifications/initialized"}') == Notification(
        "notifications/initialized"
    )
    assert decode(b'{"jsonrpc":"2.0","id":7,"result":{}}') == Response(7, {})
    assert decode(
        b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad","data":[1]}}'
    ) == ErrorResponse(None, -32700, "bad", [1])
    # 2026-07-28 lets an error response leave out an id it could not read.
    assert decode(b'{"jsonrpc":"2.0","error":{"code":-1,"message":"m"}}') == ErrorResponse(
        None, -1, "m"
    )


@pytest.mark.parametrize(
    ("raw", "request_id", "fragment"),
    [
        # request ids must be strings or integers
        (b'{"jsonrpc":"2.0","id":null,"method":"x"}', None, '"id" must be'),
        (b'{"jsonrpc":"2.0","id":true,"method":"x"}', None, '"id" must be'),
        (b'{"jsonrpc":"2.0","id":false,"method":"x"}', None, '"id" must be'),
        (b'{"jsonrpc":"2.0","id":1.5,"method":"x"}', None, '"id" must be'),
        (b'{"jsonrpc":"2.0","id":[1],"method":"x"}', None, '"id" must be'),
        # the jsonrpc member
        (b'{"id":3,"method":"x"}', 3, '"jsonrpc"'),
        (b'{"jsonrpc":"1.0","id":3,"method":"x"}', 3, '"jsonrpc"'),
        (b'{"jsonrpc":2.0,"id":"s","method":"x"}', "s", '"jsonrpc"'),
        # params must be an object
        (b'{"jsonrpc":"2.0","id":4,"method":"x","params":[1,2]}', 4, '"params"'),
        (b'{"jsonrpc":"2.0","id":4,"method":"x","params":"p"}', 4, '"params"'),
        (b'{"jsonrpc":"2.0","method":"x","params":3}', None, '"params"'),
        # method, result and error are exclusive
        (b'{"jsonrpc":"2.0","id":5,"result":{},"error":{"code":1,"message":"m"}}', 5, "both"),
        (b'{"jsonrpc":"2.0","id":5,"method":"x","result":{}}', 5, "both"),
        (b'{"jsonrpc":"2.0","id":5,"method":"x","error":{"code":1,"message":"m"}}', 5, "both"),
        (b'{"jsonrpc":"2.0","id":6,"method":7}', 6, '"method"'),
        (b'{"jsonrpc":"2.0","id":6}', 6, "needs"),
        # responses
        (b'{"jsonrpc":"2.0","id":8,"result":[]}', 8, '"result"'),
        (b'{"jsonrpc":"2.0","id":8,"result":null}', 8, '"result"'),
        (b'{"jsonrpc":"2.0","id":null,"result":{}}', None, '"id"'),
        (b'{"jsonrpc":"2.0","result":{}}', None, '"id"'),
        (b'{"jsonrpc":"2.0","id":9,"error":"boom"}', 9, '"error"'),
        (b'{"jsonrpc":"2.0","id":9,"error":{"code":"1","message":"m"}}', 9, '"code"'),
        (b'{"jsonrpc":"2.0","id":9,"error":{"code":true,"message":"m"}}', 9, '"code"'),
        (b'{"jsonrpc":"2.0","id":9,"error":{"code":1}}', 9, '"message"'),
        (b'{"jsonrpc":"2.0","id":true,"error":{"code":1,"message":"m"}}', None, '"id"'),
        # not an object at all
        (b"3", None, "JSON object"),
        (b'"x"', None, "JSON object"),
        (b"null", None, "JSON object"),
    ],
)
def test_invalid_shapes_raise_invalid_request_with_readable_id(
    raw: bytes, request_id: Any, fragment: str
) -> None:
    with pytest.raises(InvalidMessage) as info:
        decode(raw)
    assert isinstance(info.value, InvalidRequest)
    assert info.value.code == -32600
    assert info.value.request_id == request_id
    assert type(info.value.request_id) is type(request_id)
    assert fragment in info.value.message


def test_empty_batch_is_an_invalid_request() -> None:
    with pytest.raises(InvalidMessage) as info:
        decode(b"[]")
    assert info.value.code == -32600
    assert info.value.request_id is None


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"\xff\xfe", b'{"jsonrpc":"2.0"} extra', b"{'a': 1}", b"[1,]", b"NaN", b"1e400"],
)
def test_non_json_raises_parse_error(raw: bytes) -> None:
    with pytest.raises(ParseError) as info:
        decode(raw)
    assert info.value.code == -32700
    assert not isinstance(info.value, InvalidRequest)


def test_batches_keep_invalid_members_in_place() -> None:
    raw = orjson.dumps(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "a"},
            5,
            {"jsonrpc": "1.0", "id": 2, "method": "b"},
            {"jsonrpc": "2.0", "method": "c"},
            {"jsonrpc": "2.0", "id": 3, "method": "d", "params": [1]},
            {"jsonrpc": "2.0", "id": 4, "result": {"ok": True}},
        ]
    )
    decoded = decode(raw)
    assert isinstance(decoded, list)
    assert decoded[0] == Request(1, "a")
    assert isinstance(decoded[1], InvalidMessage) and decoded[1].request_id is None
    assert isinstance(decoded[2], InvalidMessage) and decoded[2].request_id == 2
    assert decoded[3] == Notification("c")
    assert isinstance(decoded[4], InvalidMessage) and decoded[4].request_id == 3
    assert decoded[5] == Response(4, {"ok": True})


@given(st.lists(json_values(max_leaves=4), max_size=4))
def test_decode_raises_only_protocol_errors(values: list[Any]) -> None:
    for value in [*values, values]:
        try:
            decoded = decode(orjson.dumps(value))
        except MCPError as exc:
            assert exc.code in (-32600, -32700)
            continue
        members = decoded if isinstance(decoded, list) else [decoded]
        assert all(
            isinstance(m, Request | Notification | Response | ErrorResponse | InvalidMessage)
            for m in members
        )


def test_error_response_helpers_round_trip_the_exception_class() -> None:
    response = error_response(12, InvalidParams("bad cursor", {"cursor": "x"}))
    assert response == ErrorResponse(12, -32602, "bad cursor", {"cursor": "x"})
    assert decode(encode(response)) == response
    exc = response.to_exception()
    assert type(exc) is InvalidParams
    assert (exc.message, exc.data) == ("bad cursor", {"cursor": "x"})
    assert type(ErrorResponse(1, -32601, "nope").to_exception()) is MethodNotFound
    assert type(ErrorResponse(1, -31999, "custom").to_exception()) is MCPError


@settings(max_examples=50)
@given(jsonrpc_messages())
def test_str_input_decodes_like_bytes(message: Any) -> None:
    assert decode(encode(message).decode("utf-8")) == message


def _depth(value: Any) -> int:
    """Levels of arrays and objects below ``value`` (0 for a scalar or an empty container)."""
    children = value.values() if isinstance(value, dict) else value
    if not isinstance(value, dict | list):
        return 0
    return max((1 + _depth(c) for c in children if isinstance(c, dict | list)), default=0)


@given(value=json_values(), limit=st.integers(0, 4))
def test_nesting_is_refused_exactly_beyond_the_limit_and_named(value: Any, limit: int) -> None:
    found = nested_too_deep(value, limit=limit, root="params")
    assert (found is not None) == (_depth(value) > limit)
    if found is not None:
        # The path names a container exactly one level past the limit.
        assert found.startswith("params")
        assert found.count("[") + found.count(".") >= min(limit + 1, 4)
