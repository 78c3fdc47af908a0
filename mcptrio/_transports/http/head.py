"""The request rules of RFC 9112 and RFC 9110 that both HTTP adapters apply, and body pacing.

A request head that breaks one of these rules is refused with the status the RFC names and
the connection is closed after the answer: a head that frames its body ambiguously cannot be
trusted to tell where the next request starts. :func:`head_error` is the one place the rules
live; the h11 adapter applies it to heads it reads itself and to heads h11 reads, and the
ASGI adapter to what the ASGI server passes on.

:class:`BodyPace` says by when a request body must have progressed, so that a client sending
a byte now and then cannot hold its connection (and what the request holds) for long.

Sans-IO: no trio here; times are passed in.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .exchange import Headers

__all__ = ["KNOWN_METHODS", "BodyPace", "absolute_form", "head_error", "origin_headers"]

KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
"""The methods of RFC 9110 section 9 and PATCH (RFC 5789). Method names are case-sensitive:
``get`` is not one of them."""

_VERSIONS = frozenset({"1.0", "1.1"})
_SCHEMES = frozenset({"http", "https"})


def absolute_form(target: str) -> tuple[str, str] | None:
    """``(authority, path)`` of an absolute-form target (``http://host:8000/mcp?x`` gives
    ``("host:8000", "/mcp")``), or None when ``target`` is not a usable absolute form."""
    try:
        parts = urlsplit(target)
    except ValueError:
        return None
    if parts.scheme.lower() not in _SCHEMES or not parts.netloc or "@" in parts.netloc:
        return None
    return parts.netloc, parts.path or "/"


def head_error(
    method: str,
    version: str,
    target: str,
    *,
    content_length: bool,
    transfer_encoding: bool,
    folded: bool = False,
) -> tuple[int, str] | None:
    """None when a request head may be served, else ``(status, reason)`` to refuse it with.

    ``version`` is the request line's (``"1.1"``), ``content_length`` and
    ``transfer_encoding`` say whether those headers are present, ``folded`` whether a header
    line was continued on the next line (obs-fold). A refused request closes its connection.
    """
    if version not in _VERSIONS:
        return (
            505,
            f"HTTP version not supported: HTTP/{version} in the request line; send HTTP/1.1",
        )
    if folded:
        # RFC 9112 section 5.2: reject, or unfold; rejecting keeps us out of disagreements
        # with a front proxy about where a header value ends.
        return (
            400,
            "bad request: a header line is continued on the next line (obsolete line "
            "folding); send each header on one line",
        )
    if method not in KNOWN_METHODS:
        hint = " (method names are case-sensitive)" if method.upper() in KNOWN_METHODS else ""
        return 501, f"not implemented: unknown method {method!r}{hint}"
    if method == "CONNECT":
        # A 2xx answer would turn the connection into a tunnel; there is nothing to tunnel to.
        return 501, "not implemented: CONNECT (this server is not a proxy)"
    if transfer_encoding:
        if content_length:
            # RFC 9112 section 6.3: a message with both is a request-smuggling attempt
            # whenever something in front of us goes by Content-Length.
            return (
                400,
                "bad request: both Transfer-Encoding and Content-Length are present; send only one",
            )
        if version == "1.0":
            # RFC 9112 section 6.1: HTTP/1.0 has no chunked coding, so the framing is faulty.
            return 400, "bad request: Transfer-Encoding in an HTTP/1.0 request; use HTTP/1.1"
    if not target.startswith("/"):
        if target == "*":
            if method != "OPTIONS":
                return 400, f"bad request: the target '*' is only for OPTIONS, not {method}"
        elif absolute_form(target) is None:
            return (
                400,
                f"bad request: the target {target!r} is neither a path nor an absolute "
                "http(s) URL with a host",
            )
    return None


class BodyPace:
    """By when a request body must have made progress, measured from ``start``.

    The whole body must arrive by ``start + timeout``; once ``grace`` seconds have passed it
    must also have come at ``min_rate`` bytes per second on average (0 turns that off). One
    deadline covers both, so a reader waits with a single timer and never polls.
    """

    __slots__ = ("_end", "_grace", "_min_rate", "start")

    def __init__(self, start: float, *, timeout: float, min_rate: float, grace: float) -> None:
        self.start = start
        self._end = start + timeout
        self._min_rate = min_rate
        self._grace = grace

    def deadline(self, received: int) -> float:
        """The time by which more than ``received`` bytes must have arrived."""
        if self._min_rate <= 0:
            return self._end
        return min(self._end, self.start + max(self._grace, received / self._min_rate))

    def reason(self, received: int, now: float) -> str:
        """Why the body was refused, for the 408 answer."""
        took = now - self.start
        if now >= self._end:
            limit = f"the whole body must arrive within {self._end - self.start:g} s"
        else:
            limit = f"a body must come at {self._min_rate:g} bytes/s or faster"
        return (
            f"request timeout: the request body came too slowly ({received} bytes in "
            f"{took:.1f} s; {limit})"
        )


def origin_headers(target: str, headers: Headers) -> Headers:
    """The headers the endpoint should see for a request to ``target``.

    For an absolute-form target RFC 9112 section 3.2.2 has the server ignore ``Host`` and use
    the target's authority, so the host checks judge the name the client actually asked for.
    """
    if target.startswith("/"):
        return headers
    form = absolute_form(target)
    if form is None:
        return headers
    items = [("host", form[0])]
    items += [(name, value) for name, value in headers.items() if name != "host"]
    return Headers.from_lower(items)
