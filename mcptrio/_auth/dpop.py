"""DPoP proofs (RFC 9449): a key pair that signs one fresh proof JWT per HTTP request.

The JOSE work (JWK export, RFC 7638 thumbprints, ES256/RS256/EdDSA signing) is joserfc's.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

import httpx

DPOP_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA")
"""The asymmetric algorithms a :class:`DPoPKey` can be generated for."""

_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


def _key_type(algorithm: str) -> str:
    """The JWK ``kty`` an algorithm signs with (joserfc wants it named on import)."""
    if algorithm.startswith("ES"):
        return "EC"
    if algorithm in ("EdDSA", "Ed25519"):
        return "OKP"
    return "RSA"


def _joserfc() -> Any:
    try:
        from joserfc import jwk, jwt
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "DPoP and private_key_jwt need joserfc: pip install 'mcptrio[auth]'"
        ) from exc
    return jwk, jwt


def b64url_sha256(text: str) -> str:
    """``BASE64URL(SHA-256(text))`` without padding (PKCE challenges, DPoP ``ath``)."""
    digest = hashlib.sha256(text.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def proof_target(url: httpx.URL | str) -> str:
    """The ``htu`` of a request: its URL without query and fragment (RFC 9449 section 4.2)."""
    target = httpx.URL(url)
    return str(target.copy_with(query=None, fragment=None))


class DPoPKey:
    """A private key that signs DPoP proofs; the public half travels in each proof's header.

    Create one with :meth:`generate` (a fresh key per client run is the usual choice) or
    :meth:`from_pem`. ``algorithm`` is the JWS ``alg`` of every proof.
    """

    def __init__(self, key: Any, algorithm: str) -> None:
        if algorithm not in DPOP_ALGORITHMS:
            raise ValueError(f"DPoP needs one of {', '.join(DPOP_ALGORITHMS)}, not {algorithm!r}")
        self._key = key
        self.algorithm = algorithm
        self.public_jwk: dict[str, Any] = dict(key.as_dict(private=False))
        """The public key as a JWK (the proof's ``jwk`` header)."""
        self.thumbprint: str = str(key.thumbprint())
        """The RFC 7638 SHA-256 thumbprint a bound token carries as ``cnf.jkt``."""

    @classmethod
    def generate(cls, algorithm: str = "ES256") -> DPoPKey:
        """A new key pair for ``algorithm``."""
        jwk, _ = _joserfc()
        if algorithm in _CURVES:
            key = jwk.ECKey.generate_key(_CURVES[algorithm])
        elif algorithm == "EdDSA":
            key = jwk.OKPKey.generate_key("Ed25519")
        elif algorithm in DPOP_ALGORITHMS:
            key = jwk.RSAKey.generate_key(2048)
        else:
            raise ValueError(f"DPoP needs one of {', '.join(DPOP_ALGORITHMS)}, not {algorithm!r}")
        return cls(key, algorithm)

    @classmethod
    def from_pem(cls, pem: str | bytes, algorithm: str = "ES256") -> DPoPKey:
        """A key loaded from a PEM private key."""
        jwk, _ = _joserfc()
        return cls(jwk.import_key(pem, _key_type(algorithm)), algorithm)

    def proof(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
    ) -> str:
        """A new proof JWT for one request: unique ``jti``, ``htm``, ``htu``, ``iat``.

        ``access_token`` adds its hash as ``ath`` (requests to the resource server);
        ``nonce`` echoes a server-provided ``DPoP-Nonce``.
        """
        _, jwt = _joserfc()
        header = {"typ": "dpop+jwt", "alg": self.algorithm, "jwk": self.public_jwk}
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(24),
            "htm": method.upper(),
            "htu": proof_target(url),
            "iat": int(time.time()),
        }
        if access_token is not None:
            claims["ath"] = b64url_sha256(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        return str(jwt.encode(header, claims, self._key, algorithms=[self.algorithm]))

    def __repr__(self) -> str:
        return f"<DPoPKey {self.algorithm} jkt={self.thumbprint}>"


def sign_client_assertion(
    private_key_pem: str | bytes,
    algorithm: str,
    *,
    client_id: str,
    audience: str,
    lifetime: int = 300,
) -> str:
    """A ``private_key_jwt`` client assertion (RFC 7523): ``iss`` = ``sub`` = the client id."""
    jwk, jwt = _joserfc()
    key = jwk.import_key(private_key_pem, _key_type(algorithm))
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": secrets.token_urlsafe(24),
        "iat": now,
        "exp": now + lifetime,
    }
    return str(jwt.encode({"alg": algorithm, "typ": "JWT"}, claims, key, algorithms=[algorithm]))
