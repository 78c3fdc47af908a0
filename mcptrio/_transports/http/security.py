"""Host and Origin checks for the HTTP endpoint: the guard against DNS rebinding and cross-site use.

A browser page on ``http://evil.example`` whose name re-resolves to 127.0.0.1 can reach a local
server; it gives itself away through ``Host`` (the name it used) and ``Origin`` (the page it
came from). :func:`check_request` allows a request only when its host is on the allowed list
and its Origin, if it sent one, is too. Clients that are not browsers send no Origin and pass.

Behind a reverse proxy the ``Host`` the server sees is often the proxy's upstream name, so
``X-Forwarded-Host`` and ``Forwarded: host=`` are believed, but only from the proxy addresses
named in :attr:`HostPolicy.trust_forwarded_from`.

Sans-IO: no trio here.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from typing import Any, Final, TypeAlias

import attrs

__all__ = [
    "DEFAULT_ALLOWED_HOSTS",
    "HostPolicy",
    "check_request",
    "client_address",
    "default_origins",
]

DEFAULT_ALLOWED_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")
"""Loopback names only: a server reachable under any other name must list that name."""

_HOSTS_KEY: Final = "http.allowed_hosts"
_ORIGINS_KEY: Final = "http.allowed_origins"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_LABELS = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_PORT = re.compile(r"[0-9]{1,5}")

_Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


@attrs.frozen
class _HostPattern:
    """A host name (``"[::1]"`` for IPv6) or ``"*.suffix"``; port None matches any port."""

    host: str
    port: int | None

    def matches(self, host: str, port: int | None) -> bool:
        if self.host.startswith("*."):
            if not (host.endswith(self.host[1:]) and len(host) > len(self.host) - 1):
                return False
        elif host != self.host:
            return False
        # A Host without a port means the scheme's default, which is 80 or 443.
        return self.port is None or port == self.port or (port is None and self.port in (80, 443))


@attrs.frozen
class _OriginPattern:
    scheme: str
    host: _HostPattern


@attrs.frozen
class _Compiled:
    any_host: bool
    hosts: tuple[_HostPattern, ...]
    any_origin: bool
    null_origin: bool
    origins: tuple[_OriginPattern, ...]
    any_proxy: bool
    proxies: tuple[_Network, ...]


# --------------------------------------------------------------------------- parsing


def _parse_host(text: str, *, pattern: bool = False) -> tuple[str, int | None] | None:
    """Normalize ``host[:port]`` (lowercase, no trailing dot, IPv6 in brackets); None if invalid."""
    text = text.strip().lower()
    port_text: str | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        host = _ipv6(text[1:end])
        if host is None:
            return None
        rest = text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                return None
            port_text = rest[1:]
    elif text.count(":") > 1:
        # A bare IPv6 literal (the brackets are often forgotten in settings).
        host = _ipv6(text)
        if host is None:
            return None
    else:
        name, sep, port_part = text.partition(":")
        if sep:
            port_text = port_part
        if pattern and name.startswith("*."):
            suffix = _hostname(name[2:])
            if suffix is None:
                return None
            host = "*." + suffix
        else:
            maybe = _hostname(name)
            if maybe is None:
                return None
            host = maybe
    port: int | None = None
    if port_text:  # "host:" with an empty port means the default port
        if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
            return None
        port = int(port_text)
    return host, port


def _hostname(name: str) -> str | None:
    if name.endswith("."):
        name = name[:-1]  # "localhost." is the same name, written fully qualified
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return name if _LABELS.fullmatch(name) else None


def _ipv6(text: str) -> str | None:
    try:
        return f"[{ipaddress.IPv6Address(text).compressed}]"
    except ValueError:
        return None


def _parse_origin(text: str, *, pattern: bool = False) -> tuple[str, str, int | None] | None:
    """Split ``scheme://host[:port]`` into normalized parts; None if it is not an origin."""
    scheme, sep, rest = text.strip().partition("://")
    scheme = scheme.lower()
    if not sep or not _SCHEME.fullmatch(scheme):
        return None
    if rest.endswith("/"):
        rest = rest[:-1]
    if not rest or any(c in rest for c in "/?#@\\"):
        return None
    parsed = _parse_host(rest, pattern=pattern)
    if parsed is None:
        return None
    host, port = parsed
    return scheme, host, port


def _parse_network(text: str) -> _Network:
    candidate = text.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    return ipaddress.ip_network(candidate, strict=False)


def _peer_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    candidate = text.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    candidate = candidate.partition("%")[0]  # an IPv6 zone ("fe80::1%eth0") names no other host
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# --------------------------------------------------------------------------- the policy


def _to_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError(f"expected a list of strings, got the single string {value!r}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"expected a list of strings, got {item!r} in it")
    return items


def _check_hosts(inst: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for entry in value:
        if entry != "*" and _parse_host(entry, pattern=True) is None:
            raise ValueError(
                f"{attribute.name}: {entry!r} is not a host name, 'name:port', an IP address,"
                " '*.domain' or '*'"
            )


def _check_origins(inst: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for entry in value:
        if entry not in ("*", "null") and _parse_origin(entry, pattern=True) is None:
            raise ValueError(
                f"{attribute.name}: {entry!r} is not an origin like 'https://example.com' or"
                " 'http://localhost:3000' (no path), 'null' or '*'"
            )


def _check_proxies(inst: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for entry in value:
        if entry == "*":
            continue
        try:
            _parse_network(entry)
        except ValueError:
            raise ValueError(
                f"{attribute.name}: {entry!r} is not an IP address or network like 10.0.0.0/8"
            ) from None


def default_origins(hosts: Iterable[str]) -> tuple[str, ...]:
    """The ``http`` and ``https`` origins (any port) of ``hosts``; ``"*"`` contributes none."""
    out: list[str] = []
    for entry in hosts:
        parsed = None if entry == "*" else _parse_host(entry, pattern=True)
        if parsed is None:
            continue
        out.extend(f"{scheme}://{parsed[0]}" for scheme in ("http", "https"))
    return tuple(dict.fromkeys(out))


@attrs.frozen
class HostPolicy:
    """Which hosts and origins the HTTP endpoint answers, and which proxies it believes."""

    allowed_hosts: tuple[str, ...] = attrs.field(
        default=DEFAULT_ALLOWED_HOSTS, converter=_to_tuple, validator=_check_hosts
    )
    """Names the server may be reached by: ``name``, ``name:port`` (only that port), an IP
    address (IPv6 in brackets), ``*.domain`` (any subdomain) or ``*`` (any host). Case and a
    trailing dot do not matter; an entry without a port allows every port."""

    allowed_origins: tuple[str, ...] = attrs.field(
        default=(), converter=_to_tuple, validator=_check_origins
    )
    """Browser origins allowed to call: ``scheme://host[:port]`` (no port: any port),
    ``scheme://*.domain``, ``null`` (sandboxed pages, refused unless listed) or ``*`` (any
    origin but ``null``). Empty (the default) means the http and https origins of
    ``allowed_hosts``, any port; ``*`` among the hosts contributes none."""

    trust_forwarded_from: tuple[str, ...] = attrs.field(
        default=(), converter=_to_tuple, validator=_check_proxies
    )
    """Peer addresses or networks (``10.0.0.0/8``) of reverse proxies whose
    ``X-Forwarded-Host`` and ``Forwarded: host=`` headers are believed; ``*`` trusts any peer.
    The proxy must set (or append to) the header it uses."""


@functools.lru_cache(maxsize=64)
def _compile(policy: HostPolicy) -> _Compiled:
    hosts: list[_HostPattern] = []
    for entry in policy.allowed_hosts:
        parsed = None if entry == "*" else _parse_host(entry, pattern=True)
        if parsed is not None:
            hosts.append(_HostPattern(*parsed))
    origins: list[_OriginPattern] = []
    for entry in policy.allowed_origins or default_origins(policy.allowed_hosts):
        origin = None if entry in ("*", "null") else _parse_origin(entry, pattern=True)
        if origin is not None:
            scheme, host, port = origin
            origins.append(_OriginPattern(scheme, _HostPattern(host, port)))
    return _Compiled(
        any_host="*" in policy.allowed_hosts,
        hosts=tuple(hosts),
        any_origin="*" in policy.allowed_origins,
        null_origin="null" in policy.allowed_origins,
        origins=tuple(origins),
        any_proxy="*" in policy.trust_forwarded_from,
        proxies=tuple(_parse_network(p) for p in policy.trust_forwarded_from if p != "*"),
    )


# --------------------------------------------------------------------------- checking


def check_request(
    policy: HostPolicy,
    *,
    host: str | None,
    origin: str | None,
    forwarded_host: str | None,
    forwarded: str | None,
    peer_ip: str | None,
) -> str | None:
    """None when the request may proceed, else the reason to answer 403 with.

    ``host``, ``origin``, ``forwarded_host`` and ``forwarded`` are the raw ``Host``, ``Origin``,
    ``X-Forwarded-Host`` and ``Forwarded`` header values (repeated headers joined with a
    comma), or None when absent; ``peer_ip`` is the address the connection came from. When the
    peer is a trusted proxy, the host it reports (the last entry of each forwarded header
    present) is checked instead of ``Host``; every such entry must be allowed.
    """
    compiled = _compile(policy)
    reason = _check_hosts_of(compiled, host, forwarded_host, forwarded, peer_ip)
    if reason is None and origin is not None:
        reason = _check_origin(compiled, origin)
    return reason


def _check_hosts_of(
    compiled: _Compiled,
    host: str | None,
    forwarded_host: str | None,
    forwarded: str | None,
    peer_ip: str | None,
) -> str | None:
    if (forwarded_host is not None or forwarded is not None) and _trusted(compiled, peer_ip):
        claimed: list[tuple[str, str]] = []
        if forwarded_host is not None:
            last = _last_list_item(forwarded_host)
            if last:
                claimed.append(("X-Forwarded-Host", last))
        if forwarded is not None:
            try:
                forwarded_value = _forwarded_host(forwarded)
            except ValueError:
                return (
                    f"the Forwarded header from proxy {peer_ip} is malformed ({forwarded!r});"
                    " fix the proxy configuration"
                )
            if forwarded_value:
                claimed.append(("Forwarded host", forwarded_value))
        if claimed:
            for header, value in claimed:
                if not _host_allowed(compiled, value):
                    return (
                        f"{header} {value!r} (from proxy {peer_ip}) is not allowed;"
                        f" add it to {_HOSTS_KEY}"
                    )
            return None
    if compiled.any_host:
        return None
    if host is None or not host.strip():
        return f"the request has no Host header; send one naming an allowed host (see {_HOSTS_KEY})"
    if not _host_allowed(compiled, host):
        return f"Host {host!r} is not allowed; add it to {_HOSTS_KEY}"
    return None


def _host_allowed(compiled: _Compiled, value: str) -> bool:
    if compiled.any_host:
        return True
    parsed = _parse_host(value)
    if parsed is None:
        return False
    name, port = parsed
    return any(p.matches(name, port) for p in compiled.hosts)


def _check_origin(compiled: _Compiled, origin: str) -> str | None:
    if origin.strip().lower() == "null":
        if compiled.null_origin:
            return None
        return (
            "Origin 'null' (a sandboxed page or local file) is not allowed;"
            f" add 'null' to {_ORIGINS_KEY} to accept it"
        )
    parsed = _parse_origin(origin)
    if parsed is None:
        return f"Origin {origin!r} is not a valid origin (expected scheme://host[:port])"
    if compiled.any_origin:
        return None
    scheme, name, port = parsed
    if port is None:
        port = _DEFAULT_PORTS.get(scheme)
    for pattern in compiled.origins:
        if pattern.scheme == scheme and pattern.host.matches(name, port):
            return None
    return f"Origin {origin!r} is not allowed; add it to {_ORIGINS_KEY}"


def client_address(
    policy: HostPolicy,
    *,
    peer_ip: str | None,
    forwarded_for: str | None,
    forwarded: str | None,
) -> str | None:
    """The address a request came from, for per-client limits.

    ``peer_ip`` unless it is a trusted proxy; then the rightmost address in
    ``X-Forwarded-For`` (``forwarded_for``) or the ``for=`` parameters of ``Forwarded`` that
    is not itself a trusted proxy (entries to its left were written by the client and may be
    anything). A trusted peer whose header names no usable address counts as itself.
    """
    compiled = _compile(policy)
    if not _trusted(compiled, peer_ip):
        return peer_ip
    hops: list[str] = []
    try:
        if forwarded is not None:
            for element in _split_outside_quotes(forwarded, ","):
                for pair in _split_outside_quotes(element, ";"):
                    key, sep, raw = pair.partition("=")
                    if sep and key.strip().lower() == "for":
                        hops.append(_unquote(raw.strip()))
        elif forwarded_for is not None:
            hops = forwarded_for.split(",")
    except ValueError:
        return peer_ip
    for hop in reversed(hops):
        address = _peer_address(_strip_port(hop.strip()))
        if address is None:
            return peer_ip  # unknown, obfuscated or malformed: no better name than the proxy
        text = str(address)
        if not _trusted(compiled, text):
            return text
    return peer_ip


def _strip_port(hop: str) -> str:
    """``1.2.3.4:80`` -> ``1.2.3.4``; ``[::1]:80`` -> ``::1``; an IPv6 address unchanged."""
    if hop.startswith("["):
        return hop[1:].partition("]")[0]
    if hop.count(":") == 1:
        return hop.partition(":")[0]
    return hop


def _trusted(compiled: _Compiled, peer_ip: str | None) -> bool:
    if compiled.any_proxy:
        return True
    if peer_ip is None or not compiled.proxies:
        return False
    address = _peer_address(peer_ip)
    if address is None:
        return False
    return any(address in network for network in compiled.proxies)


def _last_list_item(value: str) -> str:
    # The last entry is the one the trusted proxy added; earlier ones came from the client.
    return value.rpartition(",")[2].strip()


def _forwarded_host(value: str) -> str | None:
    """The ``host`` parameter of the last element of an RFC 7239 ``Forwarded`` header."""
    elements = _split_outside_quotes(value, ",")
    last = elements[-1].strip() if elements else ""
    for pair in _split_outside_quotes(last, ";"):
        pair = pair.strip()
        if not pair:
            continue
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(pair)
        if key.strip().lower() == "host":
            return _unquote(raw.strip())
    return None


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise ValueError("unterminated quoted string")
    parts.append("".join(current))
    return parts


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    return raw
