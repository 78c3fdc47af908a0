from __future__ import annotations

import math
import re
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcptrio._ops.metrics import (
    CONTENT_TYPE,
    DEFAULT_BUCKETS,
    OTHER,
    Histogram,
    Metrics,
    MetricsSnapshot,
    render_prometheus,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- counting


def test_requests_by_outcome_and_code() -> None:
    m = Metrics()
    m.record_request("tools/call", duration=0.01, outcome="ok")
    m.record_request("tools/call", duration=0.02, outcome="error", code=-32602)
    m.record_request("tools/call", duration=0.03, outcome="error", code=-32602)
    m.record_request("tools/call", duration=0.04, outcome="error")
    m.record_request("tools/list", duration=0.05, outcome="cancelled")
    snap = m.statistics()
    call = snap.requests["tools/call"]
    assert (call.ok, call.error, call.cancelled, call.total) == (1, 3, 0, 4)
    assert dict(call.errors_by_code) == {"-32602": 2, "none": 1}
    assert snap.requests["tools/list"].cancelled == 1
    assert snap.requests_total == 5
    assert snap.errors_total == 3
    assert snap.cancelled_total == 1
    assert dict(snap.errors_by_code) == {"-32602": 2, "none": 1}
    assert call.latency.count == 4
    assert call.latency.sum == pytest.approx(0.1)


def test_bad_outcome_and_direction_are_programming_errors() -> None:
    m = Metrics()
    with pytest.raises(ValueError, match="outcome"):
        m.record_request("x", duration=0.1, outcome="fine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="direction"):
        m.record_notification("x", "sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="direction"):
        m.record_message("up")  # type: ignore[arg-type]


def test_notifications_and_messages() -> None:
    m = Metrics()
    m.record_notification("notifications/progress", "out")
    m.record_notification("notifications/progress", "out")
    m.record_notification("notifications/cancelled", "in")
    m.record_message("in", 120)
    m.record_message("in")
    m.record_message("out", 30)
    snap = m.statistics()
    assert dict(snap.notifications_out) == {"notifications/progress": 2}
    assert dict(snap.notifications_in) == {"notifications/cancelled": 1}
    assert (snap.messages_in, snap.messages_out) == (2, 1)
    assert (snap.bytes_in, snap.bytes_out) == (120, 30)


def test_in_flight_and_gauges() -> None:
    m = Metrics()
    m.increment_in_flight()
    m.increment_in_flight()
    m.decrement_in_flight()
    assert m.in_flight == 1
    m.set_gauge("open_connections", 4, description="Open connections.")
    m.adjust_gauge("open_connections", -1)
    m.adjust_gauge("sse_streams", 2)
    snap = m.statistics()
    assert snap.in_flight == 1
    assert dict(snap.gauges) == {"open_connections": 3, "sse_streams": 2}
    assert snap.gauge_help["open_connections"] == "Open connections."


@pytest.mark.parametrize("name", ["", "1abc", "has space", "dash-ed", "requests_total"])
def test_bad_gauge_names(name: str) -> None:
    with pytest.raises(ValueError, match="gauge name"):
        Metrics().set_gauge(name, 1)
    with pytest.raises(ValueError, match="gauge name"):
        Metrics().adjust_gauge(name, 1)


def test_uptime_uses_clock() -> None:
    clock = FakeClock()
    m = Metrics(clock=clock)
    clock.now += 12.5
    assert m.statistics().uptime == 12.5


def test_snapshot_is_immutable_and_detached() -> None:
    m = Metrics()
    m.record_request("a", duration=0.1, outcome="ok")
    m.set_gauge("g", 1)
    snap = m.statistics()
    with pytest.raises(TypeError):
        snap.requests["b"] = snap.requests["a"]  # type: ignore[index]
    with pytest.raises(TypeError):
        snap.gauges["g"] = 2  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snap.messages_in = 3  # type: ignore[misc]
    m.record_request("a", duration=0.1, outcome="ok")
    m.record_request("b", duration=0.1, outcome="error", code=1)
    m.set_gauge("g", 5)
    assert snap.requests["a"].ok == 1
    assert "b" not in snap.requests
    assert snap.gauges["g"] == 1


def test_method_names_are_capped() -> None:
    m = Metrics(max_methods=3)
    for i in range(50):
        m.record_request(f"evil/{i}", duration=0.001, outcome="ok")
    for i in range(50):
        # Requests and notifications share one set of method labels.
        m.record_notification(f"notifications/evil/{i}", "in")
    m.record_request("evil/0", duration=0.001, outcome="ok")
    snap = m.statistics()
    assert set(snap.requests) == {"evil/0", "evil/1", "evil/2", OTHER}
    assert snap.requests["evil/0"].ok == 2
    assert snap.requests[OTHER].ok == 47
    assert dict(snap.notifications_in) == {OTHER: 50}
    assert len(m._labels) == 3


def test_long_and_unencodable_method_names_fold_into_other() -> None:
    m = Metrics()
    m.record_request("x" * 10_000, duration=0.0, outcome="ok")
    m.record_request("bad\ud800", duration=0.0, outcome="ok")
    assert set(m.statistics().requests) == {OTHER}


def test_error_codes_are_capped() -> None:
    m = Metrics(max_error_codes=2)
    for code in range(10):
        m.record_request("a", duration=0.0, outcome="error", code=code)
    m.record_request("a", duration=0.0, outcome="error", code=0)
    assert dict(m.statistics().requests["a"].errors_by_code) == {"0": 2, "1": 1, OTHER: 8}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"buckets": ()},
        {"buckets": (1.0, 1.0)},
        {"buckets": (2.0, 1.0)},
        {"buckets": (1.0, math.inf)},
        {"max_methods": 0},
        {"max_error_codes": 0},
    ],
)
def test_bad_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Metrics(**kwargs)


# --------------------------------------------------------------------------- histograms


def test_default_buckets_span_half_a_millisecond_to_ten_seconds() -> None:
    assert DEFAULT_BUCKETS[0] == 0.0005
    assert DEFAULT_BUCKETS[-1] == 10.0
    assert list(DEFAULT_BUCKETS) == sorted(set(DEFAULT_BUCKETS))


def test_bucket_bounds_are_inclusive() -> None:
    m = Metrics(buckets=(0.1, 1.0))
    for duration in (0.1, 0.10000001, 1.0, 1.5, -3.0, math.nan):
        m.record_request("a", duration=duration, outcome="ok")
    hist = m.statistics().requests["a"].latency
    # -3 and NaN are clamped to 0 (a clock stepping back must not break the histogram).
    assert hist.counts == (3, 2, 1)
    assert hist.cumulative() == (3, 5, 6)
    assert hist.count == 6
    assert hist.sum == pytest.approx(0.1 + 0.10000001 + 1.0 + 1.5)


def test_quantiles() -> None:
    empty = Histogram(bounds=(1.0, 2.0), counts=(0, 0, 0), count=0, sum=0.0)
    assert empty.p50 is None
    hist = Histogram(bounds=(1.0, 2.0, 4.0), counts=(10, 10, 0, 0), count=20, sum=25.0)
    assert hist.p50 == pytest.approx(1.0)
    assert hist.quantile(0.25) == pytest.approx(0.5)
    assert hist.quantile(0.75) == pytest.approx(1.5)
    assert hist.p90 == pytest.approx(1.8)
    assert hist.p99 == pytest.approx(1.98)
    slow = Histogram(bounds=(1.0,), counts=(1, 9), count=10, sum=100.0)
    assert slow.p99 == 1.0  # beyond the last bound nothing more precise is known
    with pytest.raises(ValueError, match="quantile"):
        hist.quantile(1.5)


bounds_strategy = st.lists(
    st.floats(min_value=1e-4, max_value=100.0), min_size=1, max_size=8, unique=True
).map(lambda xs: tuple(sorted(xs)))


@given(
    bounds_strategy,
    st.lists(st.floats(min_value=0.0, max_value=200.0), min_size=1, max_size=60),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_quantile_estimate_lies_in_the_true_quantile_bucket(
    bounds: tuple[float, ...], samples: list[float], q: float
) -> None:
    m = Metrics(buckets=bounds)
    for s in samples:
        m.record_request("a", duration=s, outcome="ok")
    hist = m.statistics().requests["a"].latency
    assert hist.count == len(samples) == hist.cumulative()[-1]
    estimate = hist.quantile(q)
    assert estimate is not None
    ordered = sorted(samples)
    true_value = ordered[max(math.ceil(q * len(samples)), 1) - 1]
    edges = (0.0, *bounds)
    index = next((i for i, b in enumerate(bounds) if true_value <= b), len(bounds))
    if index == len(bounds):
        assert estimate == bounds[-1]
    else:
        assert edges[index] - 1e-9 <= estimate <= bounds[index] + 1e-9
    # Quantiles never decrease as q grows.
    assert hist.quantile(min(q + 0.1, 1.0)) >= estimate - 1e-12  # type: ignore[operator]


# --------------------------------------------------------------------------- exposition

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def parse_value(text: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    assert re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text), text
    return float(text)


def parse_labels(text: str, pos: int) -> tuple[dict[str, str], int]:
    """Parse ``{a="b",...}`` starting at ``text[pos] == "{"``; return labels and the end."""
    assert text[pos] == "{"
    pos += 1
    labels: dict[str, str] = {}
    while text[pos] != "}":
        eq = text.index("=", pos)
        name = text[pos:eq]
        assert LABEL_NAME.match(name), name
        assert name not in labels, f"duplicate label {name}"
        assert text[eq + 1] == '"'
        pos = eq + 2
        value: list[str] = []
        while text[pos] != '"':
            ch = text[pos]
            if ch == "\\":
                escaped = text[pos + 1]
                assert escaped in '\\"n', f"bad escape \\{escaped}"
                value.append("\n" if escaped == "n" else escaped)
                pos += 2
            else:
                value.append(ch)
                pos += 1
        labels[name] = "".join(value)
        pos += 1
        if text[pos] == ",":
            pos += 1
    return labels, pos + 1


def unescape_help(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\":
            assert text[i + 1] in "\\n"
            out.append("\n" if text[i + 1] == "n" else "\\")
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_exposition(text: str) -> dict[str, dict[str, Any]]:
    """A strict parser for text format 0.0.4; returns families with their samples.

    Checks: names and label names are valid, escapes are legal, a family's HELP/TYPE come
    once and before its samples, a family's samples are contiguous, histograms are complete
    and cumulative.
    """
    assert text.endswith("\n")
    families: dict[str, dict[str, Any]] = {}
    current: str | None = None
    closed: set[str] = set()

    def family_of(sample_name: str) -> str:
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample_name.removesuffix(suffix)
            if base != sample_name and families.get(base, {}).get("type") == "histogram":
                return base
        return sample_name

    for line in text[:-1].split("\n"):
        assert line, "empty line"
        if line.startswith("#"):
            parts = line.split(" ", 3)
            assert parts[1] in ("HELP", "TYPE"), line
            name = parts[2]
            assert METRIC_NAME.match(name), name
            assert name not in closed, f"{name} reopened"
            if current is not None and current != name:
                closed.add(current)
            current = name
            fam = families.setdefault(name, {"samples": []})
            assert not fam["samples"], f"{parts[1]} after samples of {name}"
            key = parts[1].lower()
            assert key not in fam, f"second {parts[1]} for {name}"
            if parts[1] == "TYPE":
                assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped")
                fam["type"] = parts[3]
            else:
                fam["help"] = unescape_help(parts[3])
            continue
        match = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
        assert match, line
        sample_name = match.group()
        pos = match.end()
        labels: dict[str, str] = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = parse_labels(line, pos)
        assert line[pos] == " ", line
        value = parse_value(line[pos + 1 :])
        name = family_of(sample_name)
        assert name not in closed, f"samples of {name} are not contiguous"
        if current is not None and current != name:
            closed.add(current)
        current = name
        families.setdefault(name, {"samples": []})["samples"].append((sample_name, labels, value))

    for name, fam in families.items():
        assert "type" in fam and "help" in fam, name
        if fam["type"] == "counter":
            assert name.endswith("_total")
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
    return families


def check_histogram(name: str, samples: list[tuple[str, dict[str, str], float]]) -> None:
    series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for sample_name, labels, value in samples:
        rest = {k: v for k, v in labels.items() if k != "le"}
        entry = series.setdefault(tuple(sorted(rest.items())), {"buckets": []})
        if sample_name == f"{name}_bucket":
            entry["buckets"].append((parse_value(labels["le"]), value))
        elif sample_name == f"{name}_sum":
            entry["sum"] = value
        else:
            assert sample_name == f"{name}_count"
            entry["count"] = value
    for entry in series.values():
        les = [le for le, _ in entry["buckets"]]
        counts = [c for _, c in entry["buckets"]]
        assert les == sorted(les) and les[-1] == math.inf
        assert counts == sorted(counts), "buckets must be cumulative"
        assert counts[-1] == entry["count"]
        assert "sum" in entry


def busy_snapshot() -> MetricsSnapshot:
    clock = FakeClock()
    m = Metrics(clock=clock)
    m.record_request("tools/call", duration=0.003, outcome="ok")
    m.record_request("tools/call", duration=0.2, outcome="error", code=-32602)
    m.record_request("tools/call", duration=30.0, outcome="cancelled")
    m.record_request('we"ird\\name\nx', duration=0.0004, outcome="error", code=-32603)
    m.record_notification("notifications/progress", "out")
    m.record_notification("notifications/progress", "in")
    m.record_message("in", 100)
    m.record_message("out", 50)
    m.increment_in_flight()
    m.set_gauge("open_connections", 3, description="Open\nconnections \\ now.")
    m.set_gauge("ratio", 0.25)
    clock.now += 2.0
    return m.statistics()


def test_render_prometheus_parses_back() -> None:
    snap = busy_snapshot()
    families = parse_exposition(render_prometheus(snap))
    samples = {
        (name, tuple(sorted(labels.items()))): value
        for fam in families.values()
        for name, labels, value in fam["samples"]
    }

    def get(name: str, **labels: str) -> float:
        return float(samples[(name, tuple(sorted(labels.items())))])

    assert families["mcptrio_requests_total"]["type"] == "counter"
    assert families["mcptrio_request_duration_seconds"]["type"] == "histogram"
    assert families["mcptrio_open_connections"]["help"] == "Open\nconnections \\ now."
    assert get("mcptrio_uptime_seconds") == 2.0
    assert get("mcptrio_messages_total", direction="in") == 1
    assert get("mcptrio_message_bytes_total", direction="out") == 50
    assert get("mcptrio_in_flight_requests") == 1
    assert get("mcptrio_requests_total", method="tools/call", outcome="ok") == 1
    assert get("mcptrio_requests_total", method="tools/call", outcome="cancelled") == 1
    assert get("mcptrio_requests_total", method='we"ird\\name\nx', outcome="error") == 1
    assert get("mcptrio_request_errors_total", method="tools/call", code="-32602") == 1
    assert get("mcptrio_request_duration_seconds_bucket", method="tools/call", le="0.005") == 1
    assert get("mcptrio_request_duration_seconds_bucket", method="tools/call", le="10.0") == 2
    assert get("mcptrio_request_duration_seconds_bucket", method="tools/call", le="+Inf") == 3
    assert get("mcptrio_request_duration_seconds_count", method="tools/call") == 3
    assert get("mcptrio_request_duration_seconds_sum", method="tools/call") == pytest.approx(30.203)
    assert get("mcptrio_notifications_total", method="notifications/progress", direction="in")
    assert get("mcptrio_open_connections") == 3
    assert get("mcptrio_ratio") == 0.25


def test_render_prefix() -> None:
    text = render_prometheus(busy_snapshot(), prefix="edge")
    assert "edge_requests_total{" in text
    assert "mcptrio_" not in text
    with pytest.raises(ValueError, match="prefix"):
        render_prometheus(busy_snapshot(), prefix="bad-prefix")


def test_render_empty_metrics_is_valid() -> None:
    families = parse_exposition(render_prometheus(Metrics().statistics()))
    assert "mcptrio_requests_total" not in families
    assert "mcptrio_messages_total" in families


def test_content_type() -> None:
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


@given(
    st.lists(
        st.tuples(
            st.text(max_size=30),
            st.sampled_from(["ok", "error", "cancelled"]),
            st.floats(min_value=0, max_value=20),
            st.none() | st.integers(-33000, 33000),
        ),
        max_size=20,
    ),
    st.lists(st.tuples(st.text(max_size=10), st.sampled_from(["in", "out"])), max_size=10),
)
def test_any_method_names_render_valid_exposition(
    requests: list[tuple[str, Any, float, int | None]], notes: list[tuple[str, Any]]
) -> None:
    m = Metrics(max_methods=8)
    for method, outcome, duration, code in requests:
        m.record_request(method, duration=duration, outcome=outcome, code=code)
    for method, direction in notes:
        m.record_notification(method, direction)
    snap = m.statistics()
    families = parse_exposition(render_prometheus(snap))
    rendered_methods = {
        labels["method"]
        for name, labels, _ in families.get("mcptrio_requests_total", {"samples": []})["samples"]
    }
    assert rendered_methods == set(snap.requests)
    assert snap.requests_total == len(requests)
    assert len(snap.requests) <= 9
