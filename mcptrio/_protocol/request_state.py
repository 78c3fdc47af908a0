"""Sealed MRTR ``requestState`` tokens: authenticated encryption, expiry, key rotation (sans-IO).

A server that answers ``input_required`` hands the client an opaque ``requestState`` and gets it
back on the retry, possibly at another server process. The client is untrusted, so the state is
sealed with AES-256-GCM under a key every process shares, bound to the method, a digest of the
params and the principal, and given an expiry.

Token layout (URL-safe base64 without padding, so it is visible ASCII)::

    v1.<key id>.<b64(nonce[12] + ciphertext + gcm tag[16] + integrity tag[16])>

The GCM additional data binds the version, key id, method, params digest and principal. The
integrity tag is an HMAC over the token's visible header, the sealed bytes and the principal,
but not the request: it lets :meth:`StateKeyring.unseal` tell a token whose bytes were altered
("tampered") from a genuine token presented with another request ("mismatch"). A token shown by
another principal is "tampered" too: to anyone but its principal, a state is as good as one that
was never issued, and nothing says it is genuine.

Callers pass ``now`` themselves. When several processes share keys it must be wall-clock time
(``time.time()``), not a per-process monotonic clock such as ``trio.current_time()``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, cast

import attrs
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "MAX_TOKEN_LENGTH",
    "RequestStateError",
    "RequestStateReason",
    "StateKey",
    "StateKeyring",
    "generate_key_spec",
    "params_digest",
]

MAX_TOKEN_LENGTH: Final = 64 * 1024
"""Longest token :meth:`StateKeyring.seal` produces and :meth:`StateKeyring.unseal` accepts."""

RequestStateReason = Literal["malformed", "unknown_key", "tampered", "expired", "mismatch"]

_VERSION: Final = "v1"
_SECRET_SIZE: Final = 32
_NONCE_SIZE: Final = 12
_GCM_TAG_SIZE: Final = 16
_MAC_SIZE: Final = 16
_MIN_BODY: Final = _NONCE_SIZE + _GCM_TAG_SIZE + _MAC_SIZE
_KEY_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_B64URL_RE: Final = re.compile(r"[A-Za-z0-9_-]*")
# Round-specific keys: the client adds or changes these on every retry of the same request.
_UNBOUND_PARAMS: Final = frozenset({"_meta", "inputResponses", "requestState"})


class RequestStateError(Exception):
    """A ``requestState`` failed verification; answer the request with -32602 (InvalidParams).

    ``reason`` says why: ``"malformed"`` (not a token this code issues), ``"unknown_key"`` (sealed
    with a key no longer in the keyring), ``"tampered"`` (bytes altered or forged),
    ``"mismatch"`` (genuine, but issued for another method, params or principal) or
    ``"expired"``.
    """

    def __init__(self, reason: RequestStateReason, message: str) -> None:
        super().__init__(message)
        self.reason: RequestStateReason = reason
        self.message = message


def _check_key_id(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or not _KEY_ID_RE.fullmatch(value):
        raise ValueError(
            f"request-state key id {str(value)[:64]!r} is invalid: use 1-64 characters "
            "from A-Z a-z 0-9 _ -"
        )


def _check_secret(_inst: object, _attr: object, value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != _SECRET_SIZE:
        size = len(value) if isinstance(value, bytes) else type(value).__name__
        raise ValueError(f"request-state secret must be exactly 32 bytes (got {size})")


@attrs.frozen
class StateKey:
    """One sealing key: an id written into every token, and a 32-byte secret (never shown)."""

    key_id: str = attrs.field(validator=_check_key_id)
    secret: bytes = attrs.field(validator=_check_secret, repr=False)


@attrs.frozen
class _Cipher:
    aead: AESGCM
    mac_key: bytes


def _derive(secret: bytes, label: bytes) -> bytes:
    # Separate subkeys, so the GCM key and the HMAC key are never the same bytes.
    return hmac.digest(secret, b"mcptrio/request-state/" + label, "sha256")


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes | None:
    """Strict unpadded URL-safe base64: anything another encoder could also produce is refused."""
    if not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    # Unused low bits in the last character would let two spellings decode to the same bytes.
    return raw if _b64encode(raw) == text else None


def params_digest(method: str, params: Mapping[str, Any]) -> bytes:
    """SHA-256 of the method and params as canonical JSON (sorted keys, no spaces).

    The top-level keys ``_meta``, ``inputResponses`` and ``requestState`` are left out, because
    they legitimately change between the rounds of one request.
    """
    bound = {k: v for k, v in params.items() if k not in _UNBOUND_PARAMS}
    return hashlib.sha256(orjson.dumps([method, bound], option=orjson.OPT_SORT_KEYS)).digest()


def _aad(key_id: str, method: str, params: Mapping[str, Any], principal: str | None) -> bytes:
    # JSON keeps the fields unambiguous (a principal of None differs from "").
    return orjson.dumps([_VERSION, key_id, method, params_digest(method, params).hex(), principal])


def _integrity_tag(mac_key: bytes, header: bytes, sealed: bytes, principal: str | None) -> bytes:
    # JSON keeps the principal unambiguous (None differs from ""), as in the AEAD's data.
    bound = header + sealed + orjson.dumps(principal)
    return hmac.digest(mac_key, bound, "sha256")[:_MAC_SIZE]


def generate_key_spec(key_id: str) -> str:
    """A fresh ``"<key_id>:<secret>"`` entry for :meth:`StateKeyring.from_config`."""
    key = StateKey(key_id, secrets.token_bytes(_SECRET_SIZE))
    return f"{key.key_id}:{_b64encode(key.secret)}"


class StateKeyring:
    """The keys that seal and unseal ``requestState``: seals with the current key, opens with any.

    To rotate, list the new key first and keep the old one until its tokens have expired; tokens
    from a key that is no longer listed fail with ``"unknown_key"``. Processes built from the
    same configuration open each other's tokens.
    """

    def __init__(self, keys: Sequence[StateKey], *, current: str | None = None) -> None:
        if not keys:
            raise ValueError("a request-state keyring needs at least one key")
        self._ciphers: dict[str, _Cipher] = {}
        for key in keys:
            if key.key_id in self._ciphers:
                raise ValueError(f"request-state key id {key.key_id!r} is listed twice")
            self._ciphers[key.key_id] = _Cipher(
                AESGCM(_derive(key.secret, b"aead")), _derive(key.secret, b"mac")
            )
        if current is None:
            current = keys[0].key_id
        elif current not in self._ciphers:
            raise ValueError(
                f"current request-state key {current!r} is not in the keyring "
                f"(known: {', '.join(self._ciphers)})"
            )
        self._current = current

    @classmethod
    def generate(cls) -> StateKeyring:
        """A keyring with one random key: enough for a single process that never restarts."""
        return cls([StateKey("k" + secrets.token_hex(4), secrets.token_bytes(_SECRET_SIZE))])

    @classmethod
    def from_config(cls, spec: str) -> StateKeyring:
        """Parse ``"kid1:BASE64URL,kid2:BASE64URL"``; the first entry is the current key.

        Each secret is 32 bytes of URL-safe base64 (see :func:`generate_key_spec`). Errors are
        :class:`ValueError` naming the bad entry, never showing a secret.
        """
        entries = spec.split(",") if spec.strip() else []
        if not entries:
            raise ValueError(
                "request-state key configuration is empty: expected 'kid:secret[,kid:secret...]'"
            )
        keys: list[StateKey] = []
        seen: set[str] = set()
        for number, entry in enumerate(entries, start=1):
            where = f"request-state key entry {number}"
            key_id, sep, encoded = entry.strip().partition(":")
            if not sep:
                raise ValueError(f"{where} has no ':' between key id and secret")
            key_id, encoded = key_id.strip(), encoded.strip()
            if not _KEY_ID_RE.fullmatch(key_id):
                raise ValueError(
                    f"{where}: key id {key_id[:64]!r} is invalid: use 1-64 characters "
                    "from A-Z a-z 0-9 _ -"
                )
            where = f"{where} ({key_id!r})"
            if key_id in seen:
                raise ValueError(f"{where}: key id is listed twice")
            seen.add(key_id)
            secret = _b64decode(encoded.rstrip("="))
            if secret is None:
                raise ValueError(f"{where}: secret is not URL-safe base64")
            if len(secret) != _SECRET_SIZE:
                raise ValueError(
                    f"{where}: secret decodes to {len(secret)} bytes, expected 32; "
                    "create one with mcptrio._protocol.request_state.generate_key_spec()"
                )
            keys.append(StateKey(key_id, secret))
        return cls(keys)

    @property
    def current(self) -> str:
        """The id of the key new tokens are sealed with."""
        return self._current

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id this keyring can unseal, current first in configuration order."""
        return tuple(self._ciphers)

    def seal(
        self,
        payload: Mapping[str, Any],
        *,
        method: str,
        params: Mapping[str, Any],
        principal: str | None,
        ttl: float,
        now: float,
    ) -> str:
        """Seal a JSON ``payload`` for the retry of ``method(params)`` by ``principal``.

        The token is valid while ``now < issued now + ttl``. Raises :class:`ValueError` for a
        non-positive ``ttl`` or a token longer than :data:`MAX_TOKEN_LENGTH`, and
        :class:`TypeError` for a payload JSON cannot carry.
        """
        if not (math.isfinite(ttl) and ttl > 0):
            raise ValueError(f"requestState ttl must be a positive number of seconds, not {ttl}")
        if not math.isfinite(now):
            raise ValueError(f"now must be a finite timestamp, not {now}")
        try:
            plaintext = orjson.dumps({"exp": now + ttl, "p": payload})
        except TypeError as exc:
            raise TypeError(f"requestState payload is not JSON-serialisable: {exc}") from None
        key_id = self._current
        cipher = self._ciphers[key_id]
        nonce = secrets.token_bytes(_NONCE_SIZE)
        sealed = nonce + cipher.aead.encrypt(
            nonce, plaintext, _aad(key_id, method, params, principal)
        )
        header = f"{_VERSION}.{key_id}."
        mac = _integrity_tag(cipher.mac_key, header.encode("ascii"), sealed, principal)
        token = header + _b64encode(sealed + mac)
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError(
                f"requestState would be {len(token)} characters, over the {MAX_TOKEN_LENGTH} "
                "limit: keep bulky data out of the payload (store it and seal a reference)"
            )
        return token

    def unseal(
        self,
        token: str,
        *,
        method: str,
        params: Mapping[str, Any],
        principal: str | None,
        now: float,
    ) -> dict[str, Any]:
        """The payload sealed into ``token``, after checking it fully.

        Raises :class:`RequestStateError`; checks run in the order malformed, unknown_key,
        tampered, mismatch, expired.
        """
        # The token comes straight from the client's JSON, whatever the annotation says.
        if not isinstance(cast(object, token), str):
            raise _malformed("it is not a string")
        if len(token) > MAX_TOKEN_LENGTH:
            raise _malformed(f"it is longer than {MAX_TOKEN_LENGTH} characters")
        parts = token.split(".")
        if len(parts) != 3:
            raise _malformed("it does not have the form v1.<key id>.<data>")
        version, key_id, body = parts
        if version != _VERSION:
            raise _malformed("its version is not v1")
        if not _KEY_ID_RE.fullmatch(key_id):
            raise _malformed("its key id is not valid")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise RequestStateError(
                "unknown_key",
                f"requestState was sealed with a key ({key_id!r}) this server does not hold "
                "(rotated out, or from another deployment); start the request again without "
                "requestState",
            )
        raw = _b64decode(body)
        if raw is None or len(raw) < _MIN_BODY:
            raise _malformed("its data is not valid unpadded URL-safe base64 of a sealed state")
        sealed, mac = raw[:-_MAC_SIZE], raw[-_MAC_SIZE:]
        header = f"{_VERSION}.{key_id}.".encode("ascii")
        expected = _integrity_tag(cipher.mac_key, header, sealed, principal)
        if not hmac.compare_digest(mac, expected):
            raise RequestStateError(
                "tampered",
                "requestState failed verification: it was altered, or not issued by this "
                "server to this caller; send it back exactly as received",
            )
        nonce, ciphertext = sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:]
        try:
            plaintext = cipher.aead.decrypt(
                nonce, ciphertext, _aad(key_id, method, params, principal)
            )
        except InvalidTag:
            raise RequestStateError(
                "mismatch",
                "requestState was issued for a different request (method or params differ);"
                " echo it only on the retry of the request that produced it",
            ) from None
        try:
            envelope = orjson.loads(plaintext)
            exp, payload = envelope["exp"], envelope["p"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            raise _malformed("its sealed contents are not in the v1 layout") from None
        if (
            isinstance(exp, bool)
            or not isinstance(exp, int | float)
            or not isinstance(payload, dict)
        ):
            raise _malformed("its sealed contents are not in the v1 layout")
        if now >= exp:
            raise RequestStateError(
                "expired",
                "requestState has expired; retry the original request without requestState "
                "and inputResponses to start over",
            )
        return cast(dict[str, Any], payload)


def _malformed(detail: str) -> RequestStateError:
    return RequestStateError(
        "malformed",
        f"requestState is not a token this server issues: {detail}; send back the requestState "
        "of the last input_required result exactly as received",
    )
