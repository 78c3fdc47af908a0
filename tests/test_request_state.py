from __future__ import annotations

import base64
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcptrio._protocol.request_state import (
    MAX_TOKEN_LENGTH,
    RequestStateError,
    StateKey,
    StateKeyring,
    generate_key_spec,
    params_digest,
)

NOW = 1_750_000_000.0
METHOD = "tools/call"
PARAMS: dict[str, Any] = {"name": "book_trip", "arguments": {"to": "Oslo", "nights": 3}}
PAYLOAD: dict[str, Any] = {"round": 2, "answers": {"confirm": {"action": "accept"}}}
TOKEN_CHARS = set(string.ascii_letters + string.digits + "-_.")

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)
json_objects = st.dictionaries(text, json_values, max_size=5)


def key(key_id: str, fill: int) -> StateKey:
    return StateKey(key_id, bytes([fill]) * 32)


RING = StateKeyring([key("k1", 1)])


def seal(ring: StateKeyring = RING, **kw: Any) -> str:
    args: dict[str, Any] = {
        "method": METHOD,
        "params": PARAMS,
        "principal": "alice",
        "ttl": 60.0,
        "now": NOW,
    }
    args.update(kw)
    payload = args.pop("payload", PAYLOAD)
    return ring.seal(payload, **args)


def unseal(token: str, ring: StateKeyring = RING, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"method": METHOD, "params": PARAMS, "principal": "alice", "now": NOW}
    args.update(kw)
    return ring.unseal(token, **args)


def reason_of(token: Any, ring: StateKeyring = RING, **kw: Any) -> str:
    with pytest.raises(RequestStateError) as info:
        unseal(token, ring, **kw)
    assert str(info.value)  # every rejection says something a person can act on
    return info.value.reason


TOKEN = seal()


# --- round trip ---------------------------------------------------------------------------


def test_round_trip() -> None:
    assert unseal(TOKEN) == PAYLOAD


def test_token_shape() -> None:
    version, key_id, body = TOKEN.split(".")
    assert (version, key_id) == ("v1", "k1")
    assert set(TOKEN) <= TOKEN_CHARS
    assert "=" not in body


def test_tokens_differ_each_time() -> None:
    # A fresh nonce per seal: equal inputs never give equal tokens.
    assert seal() != seal()


@settings(max_examples=50)
@given(
    payload=json_objects,
    method=text,
    params=json_objects,
    principal=st.none() | text,
    ttl=st.floats(0.001, 1e6),
)
def test_round_trip_any_json(
    payload: dict[str, Any],
    method: str,
    params: dict[str, Any],
    principal: str | None,
    ttl: float,
) -> None:
    token = RING.seal(payload, method=method, params=params, principal=principal, ttl=ttl, now=NOW)
    assert set(token) <= TOKEN_CHARS
    got = RING.unseal(token, method=method, params=params, principal=principal, now=NOW)
    assert got == payload


def test_round_specific_params_are_not_bound() -> None:
    retry = {
        **PARAMS,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"},
        "inputResponses": {"confirm": {"action": "accept"}},
        "requestState": TOKEN,
    }
    assert unseal(TOKEN, params=retry) == PAYLOAD


# --- tampering -------------------------------------------------------------------------------


def test_every_position_and_character_is_rejected() -> None:
    # Exhaustive: each position of the token replaced by each other visible ASCII character.
    body_start = TOKEN.rindex(".") + 1
    for position, original in enumerate(TOKEN):
        for char in map(chr, range(0x21, 0x7F)):
            if char == original:
                continue
            forged = TOKEN[:position] + char + TOKEN[position + 1 :]
            allowed = {"tampered", "malformed"}
            if position < body_start:
                allowed.add("unknown_key")  # the key id itself was changed
            assert reason_of(forged) in allowed, (position, char)


@given(st.data())
def test_random_edits_never_yield_a_payload(data: st.DataObject) -> None:
    token = TOKEN
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(token)))
        edit = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        char = data.draw(st.characters(min_codepoint=0x21, max_codepoint=0x7E))
        if edit == "insert":
            token = token[:position] + char + token[position:]
        elif edit == "delete":
            token = token[:position] + token[position + 1 :]
        else:
            token = token[:position] + char + token[position + 1 :]
    if token == TOKEN:
        return
    assert reason_of(token) in {"tampered", "malformed", "unknown_key"}


def test_every_truncation_is_rejected() -> None:
    for length in range(len(TOKEN)):
        assert reason_of(TOKEN[:length]) in {"malformed", "unknown_key", "tampered"}


def test_conformance_suite_tampering_is_rejected() -> None:
    # The conformance scenario input-required-result-tampered-state appends this suffix.
    assert reason_of(TOKEN + "-TAMPERED") in {"tampered", "malformed"}


def test_bit_flips_in_sealed_bytes_are_tampered() -> None:
    head, _, body = TOKEN.rpartition(".")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    for index in range(len(raw)):
        flipped = bytearray(raw)
        flipped[index] ^= 0x01
        forged = head + "." + base64.urlsafe_b64encode(bytes(flipped)).decode().rstrip("=")
        assert reason_of(forged) == "tampered", index


def test_forged_token_under_unknown_secret_is_tampered() -> None:
    attacker = StateKeyring([key("k1", 9)])
    assert reason_of(seal(attacker)) == "tampered"


def test_swapping_key_id_between_held_keys_is_tampered() -> None:
    ring = StateKeyring([key("k1", 1), key("k2", 2)])
    token = seal(ring)
    assert reason_of(token.replace(".k1.", ".k2."), ring) == "tampered"


# --- binding (mismatch) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"method": "prompts/get"},
        {"params": {**PARAMS, "name": "cancel_trip"}},
        {"params": {**PARAMS, "arguments": {"to": "Oslo", "nights": 4}}},
        {"params": {"name": "book_trip"}},
        {"params": {**PARAMS, "extra": True}},
    ],
)
def test_genuine_token_on_another_request_is_mismatch(change: dict[str, Any]) -> None:
    assert reason_of(TOKEN, **change) == "mismatch"


@pytest.mark.parametrize("principal", ["mallory", None, ""])
def test_another_principal_is_told_what_a_forger_is_told(principal: str | None) -> None:
    # Nothing tells another caller that the state is genuine, even with the same request.
    forged = TOKEN[:-2] + ("AA" if TOKEN[-2:] != "AA" else "BA")
    answers = []
    for token, kw in ((TOKEN, {"principal": principal}), (forged, {})):
        with pytest.raises(RequestStateError) as info:
            unseal(token, **kw)
        answers.append((info.value.reason, str(info.value)))
    assert answers[0] == answers[1]
    assert answers[0][0] == "tampered"


def test_unauthenticated_and_empty_principal_differ() -> None:
    token = seal(principal=None)
    assert unseal(token, principal=None) == PAYLOAD
    assert reason_of(token, principal="") == "tampered"


@settings(max_examples=50)
@given(params=json_objects, other=json_objects)
def test_mismatch_for_any_other_params(params: dict[str, Any], other: dict[str, Any]) -> None:
    token = seal(params=params)
    if params_digest(METHOD, params) == params_digest(METHOD, other):
        assert unseal(token, params=other) == PAYLOAD
    else:
        assert reason_of(token, params=other) == "mismatch"


# --- expiry ----------------------------------------------------------------------------------


def test_expiry() -> None:
    token = seal(ttl=30.0)
    assert unseal(token, now=NOW + 29.999) == PAYLOAD
    assert reason_of(token, now=NOW + 30.0) == "expired"
    assert reason_of(token, now=NOW + 3600.0) == "expired"


def test_binding_is_checked_before_expiry() -> None:
    assert reason_of(seal(ttl=1.0), now=NOW + 10, method="prompts/get") == "mismatch"
    assert reason_of(seal(ttl=1.0), now=NOW + 10, principal="mallory") == "tampered"


@pytest.mark.parametrize("ttl", [0.0, -1.0, float("nan"), float("inf")])
def test_ttl_must_be_positive_and_finite(ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        seal(ttl=ttl)


def test_now_must_be_finite() -> None:
    with pytest.raises(ValueError, match="now"):
        seal(now=float("nan"))


# --- rotation and shared keys ----------------------------------------------------------------


def test_rotation() -> None:
    old_ring = StateKeyring([key("old", 1)])
    rotated = StateKeyring([key("new", 2), key("old", 1)])
    retired = StateKeyring([key("new", 2)])

    old_token = seal(old_ring)
    assert unseal(old_token, rotated) == PAYLOAD
    new_token = seal(rotated)
    assert new_token.startswith("v1.new.")
    assert unseal(new_token, retired) == PAYLOAD
    assert reason_of(old_token, retired) == "unknown_key"
    assert reason_of(new_token, old_ring) == "unknown_key"


def test_explicit_current_key() -> None:
    ring = StateKeyring([key("a", 1), key("b", 2)], current="b")
    assert ring.current == "b"
    assert ring.key_ids == ("a", "b")
    assert seal(ring).startswith("v1.b.")
    with pytest.raises(ValueError, match="'c' is not in the keyring"):
        StateKeyring([key("a", 1)], current="c")


def test_keyring_rejects_empty_and_duplicates() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        StateKeyring([])
    with pytest.raises(ValueError, match="listed twice"):
        StateKeyring([key("a", 1), key("a", 2)])


def test_two_processes_share_a_config() -> None:
    config = f"{generate_key_spec('2025b')}, {generate_key_spec('2025a')}"
    process_a = StateKeyring.from_config(config)
    process_b = StateKeyring.from_config(config)
    assert process_a.current == "2025b"
    assert unseal(seal(process_a), process_b) == PAYLOAD
    assert unseal(seal(process_b), process_a) == PAYLOAD


def test_generated_keyrings_are_independent() -> None:
    first, second = StateKeyring.generate(), StateKeyring.generate()
    assert first.current != second.current
    assert unseal(seal(first), first) == PAYLOAD
    assert reason_of(seal(first), second) == "unknown_key"


def test_generate_key_spec() -> None:
    spec = generate_key_spec("prod-1")
    key_id, _, secret = spec.partition(":")
    assert key_id == "prod-1"
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert generate_key_spec("prod-1") != spec
    with pytest.raises(ValueError, match="key id"):
        generate_key_spec("bad.id")


def test_from_config_accepts_padded_secrets() -> None:
    secret = base64.urlsafe_b64encode(bytes(range(32))).decode()
    assert secret.endswith("=")
    ring = StateKeyring.from_config(f"k:{secret}")
    assert unseal(seal(ring), StateKeyring([StateKey("k", bytes(range(32)))])) == PAYLOAD


SECRET = base64.urlsafe_b64encode(b"s" * 32).decode().rstrip("=")
SHORT = base64.urlsafe_b64encode(b"s" * 16).decode()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (SECRET, "entry 1 has no ':'"),
        (f"a:{SECRET},", "entry 2 has no ':'"),
        (f"a:{SECRET},{SECRET}", "entry 2 has no ':'"),
        (f"bad.id:{SECRET}", "entry 1: key id 'bad.id' is invalid"),
        (f":{SECRET}", "entry 1: key id '' is invalid"),
        (f"a:{SECRET},a:{SECRET}", r"entry 2 \('a'\): key id is listed twice"),
        (f"a:{SHORT}", r"entry 1 \('a'\): secret decodes to 16 bytes, expected 32"),
        (f"a:{SECRET}!!", r"entry 1 \('a'\): secret is not URL-safe base64"),
        (f"a:{SECRET.replace('c', '+')}", r"entry 1 \('a'\): secret is not URL-safe base64"),
    ],
)
def test_from_config_errors_name_the_entry_not_the_secret(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        StateKeyring.from_config(spec)
    assert SECRET[:20] not in str(info.value)


def test_state_key_validation_and_repr() -> None:
    secret = bytes(range(32))
    assert secret.hex() not in repr(StateKey("a", secret))
    assert repr(secret) not in repr(StateKey("a", secret))
    with pytest.raises(ValueError, match="exactly 32 bytes"):
        StateKey("a", b"short")
    for bad in ["", "a.b", "a:b", "é", "x" * 65]:
        with pytest.raises(ValueError, match="key id"):
            StateKey(bad, secret)


# --- malformed input -------------------------------------------------------------------------

BODY = TOKEN.rpartition(".")[2]


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1",
        "v1.k1",
        "v1.k1.",
        "v1..",
        "...",
        f"v1.k1.{BODY}.extra",
        f"v2.k1.{BODY}",
        f"V1.k1.{BODY}",
        f"v1.k1.{BODY}=",
        f"v1.k1.{BODY[:-1]}+",
        f"v1.k1.{BODY[:-1]}/",
        f"v1.k1. {BODY}",
        "v1.k1.not base64!",
        "v1.k1.AAAA",
        "v1.k1." + "A" * 58,  # well-formed base64, too short to hold a sealed state
        "x" * (MAX_TOKEN_LENGTH + 1),
    ],
)
def test_malformed(token: str) -> None:
    assert reason_of(token) == "malformed"


@pytest.mark.parametrize("token", [None, 42, b"v1.k1.AAAA", ["v1"], {"v": 1}])
def test_non_string_tokens_are_malformed(token: Any) -> None:
    assert reason_of(token) == "malformed"


def test_unknown_key_id() -> None:
    with pytest.raises(RequestStateError, match="'zz'") as info:
        unseal(f"v1.zz.{BODY}")
    assert info.value.reason == "unknown_key"


@pytest.mark.parametrize("key_id", ["<script>", "a b", "x" * 65, "é"])
def test_impossible_key_id_is_malformed_and_not_echoed(key_id: str) -> None:
    with pytest.raises(RequestStateError) as info:
        unseal(f"v1.{key_id}.{BODY}")
    assert info.value.reason == "malformed"
    assert key_id not in str(info.value)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_arbitrary_text_never_unseals(token: str) -> None:
    assert reason_of(token) in {"malformed", "unknown_key", "tampered"}


# --- size limits -----------------------------------------------------------------------------


def test_oversized_payload_is_refused_at_seal_time() -> None:
    with pytest.raises(ValueError, match="over the 65536 limit"):
        seal(payload={"blob": "x" * MAX_TOKEN_LENGTH})


def test_largest_payload_round_trips() -> None:
    # base64 grows 4/3; leave room for the header, nonce, tags and JSON envelope.
    payload = {"blob": "x" * (MAX_TOKEN_LENGTH * 3 // 4 - 100)}
    token = seal(payload=payload)
    assert len(token) <= MAX_TOKEN_LENGTH
    assert unseal(token) == payload


def test_non_json_payload_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        seal(payload={"when": object()})


# --- params digest ---------------------------------------------------------------------------


def test_params_digest_known_value() -> None:
    import hashlib

    expected = hashlib.sha256(b'["tools/call",{"arguments":{"a":1,"b":[2]},"name":"t"}]').digest()
    params = {"name": "t", "arguments": {"b": [2], "a": 1}, "_meta": {"x": 1}}
    assert params_digest("tools/call", params) == expected


@settings(max_examples=50)
@given(params=json_objects, extra=json_objects)
def test_params_digest_ignores_round_keys_and_order(
    params: dict[str, Any], extra: dict[str, Any]
) -> None:
    digest = params_digest(METHOD, params)
    assert len(digest) == 32
    assert params_digest(METHOD, dict(reversed(list(params.items())))) == digest
    noisy = {**params, "_meta": extra, "inputResponses": extra, "requestState": "s"}
    assert params_digest(METHOD, noisy) == digest
    assert params_digest("prompts/get", params) != digest


def test_params_digest_keeps_nested_round_key_names() -> None:
    # Only top-level keys are round-specific; a tool argument named _meta is real input.
    plain = params_digest(METHOD, {"arguments": {}})
    assert params_digest(METHOD, {"arguments": {"_meta": 1}}) != plain
