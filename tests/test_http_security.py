from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcptrio._transports.http.security import (
    DEFAULT_ALLOWED_HOSTS,
    HostPolicy,
    check_request,
    default_origins,
)


def check(
    policy: HostPolicy,
    host: str | None = "localhost",
    origin: str | None = None,
    *,
    forwarded_host: str | None = None,
    forwarded: str | None = None,
    peer_ip: str | None = "127.0.0.1",
) -> str | None:
    return check_request(
        policy,
        host=host,
        origin=origin,
        forwarded_host=forwarded_host,
        forwarded=forwarded,
        peer_ip=peer_ip,
    )


DEFAULT = HostPolicy()


def test_defaults() -> None:
    assert DEFAULT.allowed_hosts == DEFAULT_ALLOWED_HOSTS == ("127.0.0.1", "localhost", "[::1]")
    assert DEFAULT.allowed_origins == ()
    assert DEFAULT.trust_forwarded_from == ()
    assert default_origins(DEFAULT.allowed_hosts) == (
        "http://127.0.0.1",
        "https://127.0.0.1",
        "http://localhost",
        "https://localhost",
        "http://[::1]",
        "https://[::1]",
    )
    assert default_origins(["*", "Example.COM:8080", "*.corp.example"]) == (
        "http://example.com",
        "https://example.com",
        "http://*.corp.example",
        "https://*.corp.example",
    )


# --------------------------------------------------------------------------- conformance


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:3000", "127.0.0.1", "127.0.0.1:8080", "[::1]", "[::1]:65535"],
)
@pytest.mark.parametrize(
    "origin",
    [None, "http://localhost", "http://localhost:6274", "https://127.0.0.1:1", "http://[::1]:80"],
)
def test_dns_rebinding_localhost_is_allowed(host: str, origin: str | None) -> None:
    assert check(DEFAULT, host, origin) is None


@pytest.mark.parametrize(
    ("host", "origin", "reason"),
    [
        ("evil.example.com", None, "Host 'evil.example.com' is not allowed; add it to"),
        ("evil.example.com:3000", "http://evil.example.com:3000", "Host 'evil.example.com:3000'"),
        ("localhost", "http://evil.example.com", "Origin 'http://evil.example.com' is not allowed"),
        ("localhost:3000", "https://attacker.test", "http.allowed_origins"),
        ("127.0.0.1.evil.test", None, "http.allowed_hosts"),
        ("localhost.evil.test", None, "http.allowed_hosts"),
    ],
)
def test_dns_rebinding_other_names_are_rejected(host: str, origin: str | None, reason: str) -> None:
    got = check(DEFAULT, host, origin)
    assert got is not None and reason in got


@given(port=st.integers(0, 65535), scheme=st.sampled_from(["http", "https"]))
def test_localhost_with_any_port(port: int, scheme: str) -> None:
    for name in ("localhost", "127.0.0.1", "[::1]"):
        assert check(DEFAULT, f"{name}:{port}", f"{scheme}://{name}:{port}") is None


host_label = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)


@given(labels=st.lists(host_label, min_size=1, max_size=3), port=st.none() | st.integers(1, 65535))
def test_any_other_name_is_rejected(labels: list[str], port: int | None) -> None:
    name = ".".join(labels)
    if name == "localhost":
        name = "localhost.example"
    host = name if port is None else f"{name}:{port}"
    assert check(DEFAULT, host) is not None
    assert check(DEFAULT, "localhost", f"http://{host}") is not None


# --------------------------------------------------------------------------- host matching


@pytest.mark.parametrize(
    "host", ["LOCALHOST", "LocalHost:80", "localhost.", "localhost.:8080", "[0:0:0:0:0:0:0:1]"]
)
def test_host_case_trailing_dot_and_ipv6_spelling(host: str) -> None:
    assert check(DEFAULT, host) is None


@pytest.mark.parametrize(
    "host",
    [
        "",
        " ",
        "localhost..",
        "local host",
        "user@localhost",
        "localhost:99999",
        "localhost:8x",
        "[::1",
        "[::1]x",
        "[not-ipv6]",
        "localhost/path",
    ],
)
def test_malformed_hosts_are_rejected(host: str) -> None:
    assert check(DEFAULT, host) is not None


def test_missing_host_is_rejected_unless_any_host() -> None:
    reason = check(DEFAULT, None)
    assert reason is not None and "no Host header" in reason
    assert check(HostPolicy(allowed_hosts=("*",)), None) is None


def test_entry_with_port_allows_only_that_port() -> None:
    policy = HostPolicy(allowed_hosts=("api.example.com:8443", "web.example.com:443"))
    assert check(policy, "api.example.com:8443") is None
    assert check(policy, "API.example.com.:8443") is None
    assert check(policy, "api.example.com:8444") is not None
    assert check(policy, "api.example.com") is not None
    # No port in Host means the scheme's default, so an entry for 443 accepts it.
    assert check(policy, "web.example.com") is None


def test_wildcards() -> None:
    policy = HostPolicy(
        allowed_hosts=("*.example.com",), allowed_origins=("https://*.example.com",)
    )
    assert check(policy, "a.example.com") is None
    assert check(policy, "a.b.example.com:9") is None
    assert check(policy, "example.com") is not None
    assert check(policy, "badexample.com") is not None
    assert check(policy, "a.example.com", "https://ui.example.com") is None
    assert check(policy, "a.example.com", "http://ui.example.com") is not None
    assert check(policy, "a.example.com", "https://evilexample.com") is not None


def test_any_host_and_its_origins() -> None:
    policy = HostPolicy(allowed_hosts=("*",))
    assert check(policy, "anything.example:1234") is None
    # "*" hosts give no default origins: browsers must be listed explicitly.
    assert check(policy, "anything.example", "http://anything.example") is not None
    policy = HostPolicy(allowed_hosts=("*",), allowed_origins=("*",))
    assert check(policy, "x", "http://anything.example") is None
    assert check(policy, "x", "null") is not None


# --------------------------------------------------------------------------- origins


def test_null_origin() -> None:
    reason = check(DEFAULT, "localhost", "null")
    assert reason is not None and "'null'" in reason
    assert check(HostPolicy(allowed_origins=("null",)), "localhost", "null") is None


@pytest.mark.parametrize(
    "origin",
    ["localhost", "http://", "http://localhost/path", "http://user@localhost", "://x", "1http://x"],
)
def test_malformed_origins_are_rejected(origin: str) -> None:
    reason = check(DEFAULT, "localhost", origin)
    assert reason is not None and "not a valid origin" in reason


def test_explicit_origins_replace_the_defaults() -> None:
    policy = HostPolicy(allowed_origins=("https://app.example.com", "http://localhost:3000"))
    assert check(policy, "localhost", "https://app.example.com") is None
    assert check(policy, "localhost", "https://app.example.com:443") is None
    assert check(policy, "localhost", "https://APP.example.com") is None
    assert check(policy, "localhost", "http://app.example.com") is not None
    assert check(policy, "localhost", "http://localhost:3000") is None
    assert check(policy, "localhost", "http://localhost:3001") is not None
    assert check(policy, "localhost", "http://localhost") is not None
    # An explicit default port in the entry matches an Origin that leaves it out.
    policy = HostPolicy(allowed_origins=("https://app.example.com:443",))
    assert check(policy, "localhost", "https://app.example.com") is None


def test_ipv6_origins() -> None:
    assert check(DEFAULT, "[::1]:8000", "http://[::1]:8000") is None
    assert check(DEFAULT, "[::1]:8000", "http://[::2]:8000") is not None


# --------------------------------------------------------------------------- proxies

PROXIED = HostPolicy(
    allowed_hosts=("mcp.example.com",),
    trust_forwarded_from=("10.0.0.0/8", "192.168.1.5", "fd00::/8"),
)


def test_untrusted_peers_forwarded_headers_are_ignored() -> None:
    # The internal name the proxy used is not allowed, and the forwarded header is not believed.
    reason = check(PROXIED, "backend:8000", forwarded_host="mcp.example.com", peer_ip="203.0.113.9")
    assert reason is not None and "Host 'backend:8000'" in reason
    assert (
        check(PROXIED, "mcp.example.com", forwarded_host="evil.test", peer_ip="203.0.113.9") is None
    )
    assert check(PROXIED, "backend", forwarded_host="mcp.example.com", peer_ip=None) is not None


@pytest.mark.parametrize(
    "peer", ["10.1.2.3", "192.168.1.5", "fd00::7", "[fd00::7]", "::ffff:10.0.0.1"]
)
def test_trusted_proxy_forwarded_host_is_used(peer: str) -> None:
    assert check(PROXIED, "backend:8000", forwarded_host="mcp.example.com", peer_ip=peer) is None
    reason = check(PROXIED, "backend:8000", forwarded_host="evil.test", peer_ip=peer)
    assert reason is not None and "X-Forwarded-Host 'evil.test'" in reason


def test_the_last_forwarded_entry_is_the_proxys() -> None:
    # A client can send its own X-Forwarded-Host; the trusted proxy appends the real one.
    peer = "10.0.0.2"
    assert (
        check(PROXIED, "b", forwarded_host="mcp.example.com, evil.test", peer_ip=peer) is not None
    )
    assert check(PROXIED, "b", forwarded_host="evil.test, mcp.example.com", peer_ip=peer) is None


def test_forwarded_header() -> None:
    peer = "10.0.0.2"
    good = 'for=192.0.2.60;proto=https;host="mcp.example.com:443"'
    assert check(PROXIED, "backend", forwarded=good, peer_ip=peer) is None
    assert check(PROXIED, "backend", forwarded=f"host=evil.test, {good}", peer_ip=peer) is None
    reason = check(PROXIED, "backend", forwarded=f"{good}, Host=evil.test", peer_ip=peer)
    assert reason is not None and "Forwarded host 'evil.test'" in reason
    # Quoted strings may hold separators.
    quoted = 'for="[2001:db8::1]:4711";host="mcp.example.com";by="a,b;c"'
    assert check(PROXIED, "backend", forwarded=quoted, peer_ip=peer) is None
    # The last element names no host: fall back to Host.
    assert check(PROXIED, "backend", forwarded="host=mcp.example.com, for=1.2.3.4", peer_ip=peer)


def test_both_forwarded_headers_must_agree() -> None:
    peer = "10.0.0.2"
    assert (
        check(
            PROXIED,
            "backend",
            forwarded_host="mcp.example.com",
            forwarded="host=evil.test",
            peer_ip=peer,
        )
        is not None
    )
    assert (
        check(
            PROXIED,
            "backend",
            forwarded_host="mcp.example.com",
            forwarded="host=mcp.example.com",
            peer_ip=peer,
        )
        is None
    )


@pytest.mark.parametrize(
    "bad", ['host="unterminated', "justtoken", "=x", 'for=x;bad;host="mcp.example.com"']
)
def test_malformed_forwarded_from_a_trusted_proxy(bad: str) -> None:
    reason = check(PROXIED, "mcp.example.com", forwarded=bad, peer_ip="10.0.0.2")
    assert reason is not None and "malformed" in reason


def test_trust_everyone() -> None:
    policy = HostPolicy(allowed_hosts=("mcp.example.com",), trust_forwarded_from=("*",))
    assert check(policy, "backend", forwarded_host="mcp.example.com", peer_ip=None) is None


def test_origin_is_checked_behind_a_proxy_too() -> None:
    peer = "10.0.0.2"
    reason = check(
        PROXIED, "b", "https://evil.test", forwarded_host="mcp.example.com", peer_ip=peer
    )
    assert reason is not None and "Origin" in reason
    assert (
        check(
            PROXIED, "b", "https://mcp.example.com", forwarded_host="mcp.example.com", peer_ip=peer
        )
        is None
    )


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"allowed_hosts": ("bad host",)}, "allowed_hosts: 'bad host' is not a host"),
        ({"allowed_hosts": ("x:99999",)}, "allowed_hosts"),
        ({"allowed_hosts": "localhost"}, "single string"),
        ({"allowed_hosts": (1,)}, "list of strings"),
        ({"allowed_origins": ("localhost",)}, "allowed_origins: 'localhost' is not an origin"),
        ({"allowed_origins": ("http://x/path",)}, "allowed_origins"),
        ({"trust_forwarded_from": ("10.0.0.0/33",)}, "trust_forwarded_from"),
        ({"trust_forwarded_from": ("proxy.local",)}, "not an IP address"),
    ],
)
def test_bad_policies(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        HostPolicy(**kwargs)


def test_policy_accepts_lists_and_is_frozen() -> None:
    policy = HostPolicy(allowed_hosts=["localhost"])
    assert policy.allowed_hosts == ("localhost",)
    assert policy == HostPolicy(allowed_hosts=("localhost",))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.allowed_hosts = ()  # type: ignore[misc]
    # Bare IPv6 literals are accepted in settings.
    assert check(HostPolicy(allowed_hosts=("::1",)), "[::1]:8000") is None
