"""Always-on counters: requests, notifications, messages, latency histograms, gauges.

Recording costs a dict lookup and a few integer operations, so it is never switched off.
There are no locks: the runtime records from a single trio thread, and a snapshot taken by
:meth:`Metrics.statistics` is an immutable copy, safe to hand to any other code.

Method names come from peers and are untrusted: at most ``max_methods`` distinct names are
kept, later ones are counted under ``"other"``, so a hostile peer cannot grow memory. Error
codes are capped the same way.

Sans-IO: no trio here; :func:`render_prometheus` produces the text format (0.0.4).
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import time
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Literal

import attrs

__all__ = [
    "CONTENT_TYPE",
    "BudgetStats",
    "DEFAULT_BUCKETS",
    "NO_CODE",
    "OTHER",
    "Histogram",
    "MethodStats",
    "Metrics",
    "MetricsSnapshot",
    "render_prometheus",
]

Direction = Literal["in", "out"]
Outcome = Literal["ok", "error", "cancelled"]

DEFAULT_BUCKETS: Final[tuple[float, ...]] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Upper bounds (seconds) of the latency buckets; one more bucket catches everything slower."""

OTHER: Final = "other"
"""Label under which methods and error codes beyond the caps are counted."""

NO_CODE: Final = "none"
"""Error-code key for errors recorded without a code."""

_MAX_LABEL_CHARS = 128
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")


# --------------------------------------------------------------------------- snapshot types


@attrs.frozen
class Histogram:
    """Latency distribution: per-bucket counts (the last bucket is ``+Inf``), count and sum."""

    bounds: tuple[float, ...]
    """Finite upper bounds in seconds, increasing."""
    counts: tuple[int, ...]
    """Observations per bucket, not cumulative; ``len(bounds) + 1`` entries."""
    count: int
    """Number of observations."""
    sum: float
    """Sum of observed durations, in seconds."""

    def cumulative(self) -> tuple[int, ...]:
        """Observations at or below each bound, then the total (Prometheus ``le`` buckets)."""
        out: list[int] = []
        running = 0
        for c in self.counts:
            running += c
            out.append(running)
        return tuple(out)

    def quantile(self, q: float) -> float | None:
        """Estimate the ``q`` quantile (0..1) by linear interpolation inside its bucket.

        ``None`` when there are no observations. A quantile landing in the ``+Inf`` bucket is
        reported as the largest finite bound, since nothing more precise is known.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be between 0 and 1, got {q}")
        if self.count == 0:
            return None
        rank = q * self.count
        running = 0
        for i, c in enumerate(self.counts):
            if c and running + c >= rank:
                if i == len(self.bounds):
                    return self.bounds[-1]
                lower = self.bounds[i - 1] if i > 0 else 0.0
                upper = self.bounds[i]
                return lower + (upper - lower) * max(rank - running, 0.0) / c
            running += c
        return self.bounds[-1]  # pragma: no cover - counts always sum to count

    @property
    def p50(self) -> float | None:
        """Estimated median, in seconds."""
        return self.quantile(0.5)

    @property
    def p90(self) -> float | None:
        """Estimated 90th percentile, in seconds."""
        return self.quantile(0.9)

    @property
    def p99(self) -> float | None:
        """Estimated 99th percentile, in seconds."""
        return self.quantile(0.99)


@attrs.frozen
class MethodStats:
    """Requests of one method: outcomes, error codes and latency."""

    ok: int
    """Requests answered with a result."""
    error: int
    """Requests answered with a JSON-RPC error."""
    cancelled: int
    """Requests cancelled before they were answered."""
    errors_by_code: Mapping[str, int]
    """Errors per code: decimal string, ``"none"`` without a code, ``"other"`` past the cap."""
    latency: Histogram
    """Durations of all requests of this method, whatever their outcome."""

    @property
    def total(self) -> int:
        """All requests of this method."""
        return self.ok + self.error + self.cancelled


@attrs.frozen
class BudgetStats:
    """One budget (connections, requests in flight, streams, sessions...) at one moment."""

    in_use: int
    """Units in use."""
    limit: int
    """Units allowed at once."""
    rejected: int
    """Requests or connections refused because the budget was spent."""


@attrs.frozen
class MetricsSnapshot:
    """An immutable copy of every counter at one moment."""

    uptime: float
    """Seconds since the :class:`Metrics` object was created."""
    requests: Mapping[str, MethodStats]
    """Per method name (or ``"other"``)."""
    notifications_in: Mapping[str, int]
    """Notifications received, per method."""
    notifications_out: Mapping[str, int]
    """Notifications sent, per method."""
    messages_in: int
    """JSON-RPC messages received."""
    messages_out: int
    """JSON-RPC messages sent."""
    bytes_in: int
    """Bytes of messages received (as reported by the transports)."""
    bytes_out: int
    """Bytes of messages sent (as reported by the transports)."""
    in_flight: int
    """Requests being handled right now."""
    gauges: Mapping[str, float]
    """Named gauges set by transports and session managers."""
    gauge_help: Mapping[str, str]
    """Description of each named gauge that was given one."""
    budgets: Mapping[str, BudgetStats] = attrs.field(factory=lambda: types.MappingProxyType({}))
    """Per budget name (``connections``, ``in_flight``, ``streams``, ``sessions``, ...)."""

    @property
    def requests_total(self) -> int:
        """All requests recorded."""
        return sum(s.total for s in self.requests.values())

    @property
    def errors_total(self) -> int:
        """All requests answered with an error."""
        return sum(s.error for s in self.requests.values())

    @property
    def cancelled_total(self) -> int:
        """All requests cancelled."""
        return sum(s.cancelled for s in self.requests.values())

    @property
    def errors_by_code(self) -> Mapping[str, int]:
        """Error count per code over all methods."""
        out: dict[str, int] = {}
        for stats in self.requests.values():
            for code, n in stats.errors_by_code.items():
                out[code] = out.get(code, 0) + n
        return types.MappingProxyType(out)


# --------------------------------------------------------------------------- live counters


class _MethodCounters:
    """Mutable per-method counters; never leaves this module."""

    __slots__ = ("buckets", "cancelled", "error", "errors", "ok", "total_seconds")

    def __init__(self, n_buckets: int) -> None:
        self.ok = 0
        self.error = 0
        self.cancelled = 0
        self.errors: dict[str, int] = {}
        self.buckets = [0] * n_buckets
        self.total_seconds = 0.0


class Metrics:
    """Live counters for one server, client or proxy side.

    Not thread-safe by design: call it from the trio thread only (worker threads report back
    through the runtime). Recording never raises for peer-supplied data.
    """

    def __init__(
        self,
        *,
        buckets: Iterable[float] = DEFAULT_BUCKETS,
        max_methods: int = 200,
        max_error_codes: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        bounds = tuple(float(b) for b in buckets)
        if not bounds or any(not math.isfinite(b) for b in bounds):
            raise ValueError("buckets must be a non-empty sequence of finite bounds")
        if any(a >= b for a, b in itertools.pairwise(bounds)):
            raise ValueError("bucket bounds must be strictly increasing")
        if max_methods < 1 or max_error_codes < 1:
            raise ValueError("max_methods and max_error_codes must be >= 1")
        self._bounds = bounds
        self._max_methods = max_methods
        self._max_error_codes = max_error_codes
        self._clock = clock
        self._started = clock()
        self._labels: set[str] = set()
        self._codes: set[str] = set()
        self._requests: dict[str, _MethodCounters] = {}
        self._notifications_in: dict[str, int] = {}
        self._notifications_out: dict[str, int] = {}
        self._messages_in = 0
        self._messages_out = 0
        self._bytes_in = 0
        self._bytes_out = 0
        self._in_flight = 0
        self._gauges: dict[str, float] = {}
        self._gauge_help: dict[str, str] = {}
        self._budgets: dict[str, BudgetStats] = {}

    # -- labels

    def _label(self, method: str) -> str:
        """The label to count ``method`` under, admitting new names until the cap."""
        if method in self._labels:
            return method
        if len(self._labels) >= self._max_methods or len(method) > _MAX_LABEL_CHARS:
            return OTHER
        try:
            method.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates cannot appear in the exposition
            return OTHER
        self._labels.add(method)
        return method

    def _code_key(self, code: int | None) -> str:
        if code is None:
            return NO_CODE
        key = str(code)
        if key in self._codes:
            return key
        if len(self._codes) >= self._max_error_codes:
            return OTHER
        self._codes.add(key)
        return key

    # -- recording

    def record_request(
        self, method: str, *, duration: float, outcome: Outcome, code: int | None = None
    ) -> None:
        """Count one finished request (handled here, or sent and answered) and its duration.

        ``code`` is the JSON-RPC error code when ``outcome`` is ``"error"``.
        """
        counters = self._requests.get(method)
        if counters is None:
            label = self._label(method)
            counters = self._requests.get(label)
            if counters is None:
                counters = self._requests[label] = _MethodCounters(len(self._bounds) + 1)
        if outcome == "ok":
            counters.ok += 1
        elif outcome == "error":
            counters.error += 1
            key = self._code_key(code)
            counters.errors[key] = counters.errors.get(key, 0) + 1
        elif outcome == "cancelled":
            counters.cancelled += 1
        else:
            raise ValueError(f"outcome must be 'ok', 'error' or 'cancelled', got {outcome!r}")
        # Written as "not ok" so NaN lands at zero too; a clock step backwards cannot go below.
        if not duration >= 0.0:
            duration = 0.0
        counters.buckets[bisect.bisect_left(self._bounds, duration)] += 1
        counters.total_seconds += duration

    def record_notification(self, method: str, direction: Direction) -> None:
        """Count one notification received (``"in"``) or sent (``"out"``)."""
        if direction == "in":
            table = self._notifications_in
        elif direction == "out":
            table = self._notifications_out
        else:
            raise ValueError(f"direction must be 'in' or 'out', got {direction!r}")
        if method not in table:
            method = self._label(method)
        table[method] = table.get(method, 0) + 1

    def record_message(self, direction: Direction, nbytes: int = 0) -> None:
        """Count one JSON-RPC message (and its size, when known) received or sent."""
        if direction == "in":
            self._messages_in += 1
            self._bytes_in += nbytes
        elif direction == "out":
            self._messages_out += 1
            self._bytes_out += nbytes
        else:
            raise ValueError(f"direction must be 'in' or 'out', got {direction!r}")

    # -- gauges

    @property
    def in_flight(self) -> int:
        """Requests being handled right now."""
        return self._in_flight

    def increment_in_flight(self) -> None:
        """A request started."""
        self._in_flight += 1

    def decrement_in_flight(self) -> None:
        """A request finished (whatever its outcome)."""
        self._in_flight -= 1

    def set_gauge(self, name: str, value: float, *, description: str | None = None) -> None:
        """Set a named gauge (``open_connections``, ``sessions_active``, ...).

        ``name`` becomes the metric name after the prefix, so it must match
        ``[a-zA-Z_:][a-zA-Z0-9_:]*``.
        """
        if name not in self._gauges:
            self._check_gauge_name(name)
        self._gauges[name] = value
        if description is not None:
            self._gauge_help[name] = description

    def adjust_gauge(self, name: str, delta: float) -> None:
        """Add ``delta`` to a named gauge (starting from 0)."""
        if name not in self._gauges:
            self._check_gauge_name(name)
        self._gauges[name] = self._gauges.get(name, 0) + delta

    def set_budget(self, name: str, *, in_use: int, limit: int, rejected: int) -> None:
        """Report one budget: units in use, the limit, and refusals so far."""
        if name not in self._budgets and (
            len(name) > _MAX_LABEL_CHARS or not _METRIC_NAME.match(name)
        ):
            raise ValueError(f"budget name {name!r} must match [a-zA-Z_:][a-zA-Z0-9_:]*")
        self._budgets[name] = BudgetStats(in_use=in_use, limit=limit, rejected=rejected)

    def _check_gauge_name(self, name: str) -> None:
        if not _METRIC_NAME.match(name):
            raise ValueError(f"gauge name {name!r} must match [a-zA-Z_:][a-zA-Z0-9_:]*")
        if name in _RESERVED_NAMES:
            raise ValueError(f"gauge name {name!r} is used by a built-in metric")

    # -- reading

    def statistics(self) -> MetricsSnapshot:
        """An immutable copy of every counter."""
        frozen = types.MappingProxyType
        requests = {
            method: MethodStats(
                ok=c.ok,
                error=c.error,
                cancelled=c.cancelled,
                errors_by_code=frozen(dict(c.errors)),
                latency=Histogram(
                    bounds=self._bounds,
                    counts=tuple(c.buckets),
                    count=sum(c.buckets),
                    sum=c.total_seconds,
                ),
            )
            for method, c in self._requests.items()
        }
        return MetricsSnapshot(
            uptime=max(self._clock() - self._started, 0.0),
            requests=frozen(requests),
            notifications_in=frozen(dict(self._notifications_in)),
            notifications_out=frozen(dict(self._notifications_out)),
            messages_in=self._messages_in,
            messages_out=self._messages_out,
            bytes_in=self._bytes_in,
            bytes_out=self._bytes_out,
            in_flight=self._in_flight,
            gauges=frozen(dict(self._gauges)),
            gauge_help=frozen(dict(self._gauge_help)),
            budgets=frozen(dict(self._budgets)),
        )


# --------------------------------------------------------------------------- exposition

_RESERVED_NAMES = frozenset(
    {
        "uptime_seconds",
        "messages_total",
        "message_bytes_total",
        "requests_total",
        "request_errors_total",
        "request_duration_seconds",
        "request_duration_seconds_bucket",
        "request_duration_seconds_sum",
        "request_duration_seconds_count",
        "notifications_total",
        "in_flight_requests",
        "budget_in_use",
        "budget_limit",
        "budget_rejections_total",
    }
)

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The HTTP ``Content-Type`` of :func:`render_prometheus` output."""


def render_prometheus(snapshot: MetricsSnapshot, *, prefix: str = "mcptrio") -> str:
    """Render a snapshot in the Prometheus text exposition format, version 0.0.4."""
    if not _METRIC_NAME.match(prefix):
        raise ValueError(f"prefix {prefix!r} must match [a-zA-Z_:][a-zA-Z0-9_:]*")
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> str:
        full = f"{prefix}_{name}"
        lines.append(f"# HELP {full} {_escape_help(help_text)}")
        lines.append(f"# TYPE {full} {kind}")
        return full

    def sample(name: str, labels: Mapping[str, str], value: float) -> None:
        if labels:
            inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{inner}}} {_number(value)}")
        else:
            lines.append(f"{name} {_number(value)}")

    name = family("uptime_seconds", "gauge", "Seconds since the metrics were created.")
    sample(name, {}, snapshot.uptime)

    name = family("messages_total", "counter", "JSON-RPC messages by direction.")
    sample(name, {"direction": "in"}, snapshot.messages_in)
    sample(name, {"direction": "out"}, snapshot.messages_out)

    name = family("message_bytes_total", "counter", "Bytes of JSON-RPC messages by direction.")
    sample(name, {"direction": "in"}, snapshot.bytes_in)
    sample(name, {"direction": "out"}, snapshot.bytes_out)

    name = family("in_flight_requests", "gauge", "Requests being handled right now.")
    sample(name, {}, snapshot.in_flight)

    methods = sorted(snapshot.requests.items())
    if methods:
        name = family("requests_total", "counter", "Finished requests by method and outcome.")
        for method, stats in methods:
            sample(name, {"method": method, "outcome": "ok"}, stats.ok)
            sample(name, {"method": method, "outcome": "error"}, stats.error)
            sample(name, {"method": method, "outcome": "cancelled"}, stats.cancelled)

    if any(stats.errors_by_code for _, stats in methods):
        name = family(
            "request_errors_total", "counter", "Requests answered with an error, by code."
        )
        for method, stats in methods:
            for code, n in sorted(stats.errors_by_code.items()):
                sample(name, {"method": method, "code": code}, n)

    if methods:
        name = family("request_duration_seconds", "histogram", "Request duration in seconds.")
        for method, stats in methods:
            hist = stats.latency
            cumulative = hist.cumulative()
            for bound, n in zip((*hist.bounds, math.inf), cumulative, strict=True):
                sample(f"{name}_bucket", {"method": method, "le": _number(bound)}, n)
            sample(f"{name}_sum", {"method": method}, hist.sum)
            sample(f"{name}_count", {"method": method}, hist.count)

    notes = [("in", m, n) for m, n in snapshot.notifications_in.items()]
    notes += [("out", m, n) for m, n in snapshot.notifications_out.items()]
    if notes:
        name = family("notifications_total", "counter", "Notifications by method and direction.")
        for direction, method, n in sorted(notes, key=lambda t: (t[1], t[0])):
            sample(name, {"method": method, "direction": direction}, n)

    budgets = sorted(snapshot.budgets.items())
    if budgets:
        name = family("budget_in_use", "gauge", "Units of each budget in use.")
        for budget, used in budgets:
            sample(name, {"budget": budget}, used.in_use)
        name = family("budget_limit", "gauge", "Units of each budget allowed at once.")
        for budget, used in budgets:
            sample(name, {"budget": budget}, used.limit)
        name = family(
            "budget_rejections_total", "counter", "Requests or connections refused, by budget."
        )
        for budget, used in budgets:
            sample(name, {"budget": budget}, used.rejected)

    for gauge, value in sorted(snapshot.gauges.items()):
        help_text = snapshot.gauge_help.get(gauge, f"Gauge {gauge}.")
        name = family(gauge, "gauge", help_text)
        sample(name, {}, value)

    return "\n".join(lines) + "\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    """Go-style float text as Prometheus parses it (``+Inf``, ``-Inf``, ``NaN``)."""
    if isinstance(value, int):  # bools too: True -> "1"
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)
