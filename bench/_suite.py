"""The benchmarks: which servers run, what is measured against what, in which order."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import attrs

from bench import _inprocess, _memory, _stores
from bench._http import Mode, initialize, probe, run_wrk, trust_ca, wrk_path
from bench._procs import BenchError, HttpServer, Pinning, Stopwatch, pin
from bench._report import Row, Sample, Side
from bench._sdk import REPO_ROOT, SERVER_SCRIPT, sdk_python
from bench._stdio import StdioServer
from bench._stores import _STREAMS
from mcptrio import StoreError

GROUPS = ("http", "latency", "stdio", "inprocess", "memory")
"""The groups a run without ``--only`` runs, in the order the benchmarks run."""
EXTRA_GROUPS = ("stores",)
"""Groups run only when ``--only`` names them."""

OURS_SERVER = Path(__file__).resolve().parent / "servers" / "ours.py"
CONNECTIONS = 50
LATENCY_CONNECTIONS = 5
LATENCY_PACE_MS = 50
LATENCY_RATE = LATENCY_CONNECTIONS * 1000 // LATENCY_PACE_MS
WARMUP_SECONDS = 1
SDK_DEFAULT = "SDK (uvicorn: h11, asyncio)"
"""The SDK as ``pip install mcp`` serves it."""
SDK_PRODUCTION = "SDK (uvicorn[standard]: httptools, uvloop)"
"""The SDK as production deploys it."""
LOAD_SATURATED = 0.9
"""A wrk run using more of its CPU than this may have measured wrk, not the server."""


@attrs.frozen
class Settings:
    """How long and how often to measure."""

    rounds: int
    seconds: int
    """Per wrk run (whole seconds: wrk's unit)."""
    loop_seconds: float
    """Per stdio and in-process timing loop."""
    sessions: int
    """Sessions (and SSE streams) opened per memory measurement."""
    warmup: bool

    @classmethod
    def smoke(cls) -> Settings:
        """Seconds, not minutes: checks that everything still runs, measures little."""
        return cls(rounds=1, seconds=1, loop_seconds=0.5, sessions=20, warmup=False)

    @classmethod
    def full(cls, rounds: int = 3, seconds: int = 5) -> Settings:
        """Figures worth reading."""
        return cls(rounds=rounds, seconds=seconds, loop_seconds=seconds, sessions=200, warmup=True)


class Unavailable(Exception):
    """A side that cannot run here for a known reason (not a failure of the benchmark)."""


@attrs.define
class Target:
    """One side of an HTTP row: which server, spoken to how."""

    side: Side
    server: str
    mode: Mode
    url: str | None = None
    session: str | None = None


class Suite:
    """Runs the selected benchmark groups and collects their rows."""

    def __init__(self, settings: Settings, groups: Sequence[str], log: Callable[[str], None]):
        self.settings = settings
        self.groups = [group for group in (*GROUPS, *EXTRA_GROUPS) if group in groups]
        self.log = log
        self.pinning = Pinning.plan()
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.failures: list[str] = []
        self.warmups: list[Sample] = []
        self.load_shares: list[tuple[float, str]] = []
        self.sdk: Path | None = None
        self.sdk_reason = ""
        self._servers: dict[str, HttpServer] = {}
        self._urls: dict[str, str] = {}
        self._down: dict[str, str] = {}
        self._stdio: dict[str, StdioServer] = {}
        self._tls_dir: str | None = None

    def _certificate(self) -> tuple[str, str]:
        """A server certificate for 127.0.0.1 from a throwaway CA (made once): cert, key."""
        import trustme

        if self._tls_dir is None:
            self._tls_dir = tempfile.mkdtemp(prefix="mcptrio-bench-tls-")
            ca = trustme.CA()
            ca.cert_pem.write_to_path(f"{self._tls_dir}/ca.pem")
            cert = ca.issue_cert("127.0.0.1")
            cert.cert_chain_pems[0].write_to_path(f"{self._tls_dir}/cert.pem")
            cert.private_key_pem.write_to_path(f"{self._tls_dir}/key.pem")
            trust_ca(f"{self._tls_dir}/ca.pem")
        return f"{self._tls_dir}/cert.pem", f"{self._tls_dir}/key.pem"

    # -- setup ----------------------------------------------------------------------------

    def _commands(self) -> dict[str, list[str] | str]:
        """Each HTTP server's command line, or why it cannot run."""
        python = sys.executable
        ours = [python, "-m", "mcptrio", "serve", str(OURS_SERVER), "--transport", "http"]
        ours += ["--port", "0"]
        commands: dict[str, list[str] | str] = {
            "ours-json": [*ours, "--json-response"],
            "ours-sse": ours,
            # The same servers with ten interceptors that let everything through.
            "ours-json-chain10": [*_CHAIN10, *ours, "--json-response"],
            "ours-sse-chain10": [*_CHAIN10, *ours],
            # Started on trust: a CLI without the option exits at once, which is cheaper than
            # asking it first.
            "ours-h11": [*ours, "--json-response", "--http-server", "h11"],
            "ours-hypercorn": [*ours, "--json-response", "--http-server", "hypercorn"],
            "raw-hypercorn": [python, "-m", "bench.servers.raw", "hypercorn"],
            "raw-h11": [python, "-m", "bench.servers.raw", "h11"],
            "raw-adapter": [python, "-m", "bench.servers.raw", "adapter"],
        }
        # HTTPS: the same servers with a certificate (wrk does not check it; the probes do).
        if "http" in self.groups:
            cert, key = self._certificate()
            for adapter in ("h11", "hypercorn"):
                plain = commands[f"ours-{adapter}"]
                assert isinstance(plain, list)
                commands[f"ours-https-{adapter}"] = [*plain, "--certfile", cert, "--keyfile", key]
        sdk = [str(self.sdk), str(SERVER_SCRIPT), "streamable-http", "--port", "0"]
        for key, command in (
            ("sdk-json", [*sdk, "--json-response"]),
            ("sdk-sse", sdk),
            ("sdk-json-production", [*sdk, "--json-response", "--production"]),
        ):
            commands[key] = command if self.sdk is not None else self.sdk_reason
        for n in range(self.settings.rounds):
            commands[f"memory-ours-{n}"] = commands["ours-json"]
            commands[f"memory-sdk-{n}"] = commands["sdk-json"]
        return commands

    def _start(self, keys: Sequence[str]) -> None:
        """Start the HTTP servers ``keys`` together, then wait for each to listen."""
        commands = self._commands()
        for key in keys:
            command = commands[key]
            if isinstance(command, str):
                self._down[key] = command
            elif key not in self._servers:
                self._servers[key] = HttpServer(key, command, cwd=str(REPO_ROOT))
        for key in keys:
            server = self._servers.get(key)
            if server is None or key in self._urls:
                continue
            try:
                self._urls[key] = server.wait_ready(self.pinning.server)
            except BenchError as exc:
                if any(
                    "unrecognized arguments: --http-server" in line for line in server.stderr_tail()
                ):
                    self._down[key] = "no --http-server option"
                else:
                    self._down[key] = "did not start"
                    self.failures.append(str(exc))

    def _url(self, key: str) -> str:
        if key in self._urls:
            return self._urls[key]
        raise Unavailable(self._down.get(key, "not started"))

    def _needed_servers(self) -> list[str]:
        keys: list[str] = []
        wrk = wrk_path() is not None
        if "http" in self.groups and wrk:
            keys += ["ours-json", "sdk-json", "sdk-json-production", "ours-sse", "sdk-sse"]
            keys += ["ours-json-chain10", "ours-sse-chain10"]
            keys += ["raw-hypercorn"]
            keys += ["ours-h11", "raw-h11", "raw-adapter", "ours-hypercorn"]
            keys += ["ours-https-h11", "ours-https-hypercorn"]
        if "latency" in self.groups and wrk:
            keys += ["ours-json", "sdk-json"]
        if "memory" in self.groups:
            for n in range(self.settings.rounds):
                keys += [f"memory-ours-{n}", f"memory-sdk-{n}"]
        return list(dict.fromkeys(keys))

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        try:
            yield
        finally:
            for stdio in self._stdio.values():
                stdio.stop()
            for server in self._servers.values():
                server.stop()
            if self._tls_dir is not None:
                shutil.rmtree(self._tls_dir, ignore_errors=True)

    def run(self) -> None:
        """Start what the groups need (all at once, so start-up overlaps), then measure."""
        self.sdk, self.sdk_reason = sdk_python()
        if self.sdk is None:
            self.notes.append(self.sdk_reason)
        with self._running():
            began = time.perf_counter()
            if "stdio" in self.groups:
                self._stdio["ours"] = StdioServer(
                    "ours (stdio)", [sys.executable, "-m", "mcptrio", "serve", str(OURS_SERVER)]
                )
                if self.sdk is not None:
                    self._stdio["sdk"] = StdioServer(
                        "SDK (stdio)", [str(self.sdk), str(SERVER_SCRIPT), "stdio"]
                    )
            self._start(self._needed_servers())
            self.log(f"servers started in {time.perf_counter() - began:.1f} s")
            # The driver is the client: it stays off the servers' CPU from here on.
            pin(0, self.pinning.load)
            steps = {
                "http": self._run_http,
                "latency": self._run_latency,
                "stdio": self._run_stdio,
                "inprocess": self._run_inprocess,
                "memory": self._run_memory,
                "stores": self._run_stores,
            }
            for group in self.groups:
                began = time.perf_counter()
                steps[group]()
                self.log(f"{group}: done in {time.perf_counter() - began:.1f} s")

    # -- HTTP throughput ------------------------------------------------------------------

    def _run_http(self) -> None:
        sdk = SDK_DEFAULT
        rows = [
            _rate_row("http-json", "HTTP tools/call, legacy JSON vs SDK", "ours (default)", sdk),
            _rate_row(
                "http-json-production",
                "HTTP tools/call, legacy JSON vs SDK as deployed",
                "ours (default)",
                SDK_PRODUCTION,
            ),
            _rate_row("http-sse", "HTTP tools/call, legacy SSE vs SDK", "ours (default)", sdk),
            _rate_row("http-2026", "HTTP tools/call, 2026-07-28 vs SDK", "ours (default)", sdk),
            _rate_row(
                "http-hypercorn",
                "HTTP legacy JSON, Hypercorn adapter vs raw Hypercorn echo",
                "ours (Hypercorn)",
                "raw Hypercorn echo",
            ),
            _rate_row(
                "http-h11",
                "HTTP legacy JSON, h11 adapter vs raw h11 echo",
                "ours (h11)",
                "raw h11 echo",
            ),
            _rate_row(
                "http-adapter",
                "HTTP legacy JSON, h11 adapter vs an echo on the same adapter",
                "ours (h11)",
                "echo on our adapter",
            ),
        ]
        legacy_json, production, sse, modern, hypercorn, h11, adapter = rows
        # HTTPS against the plain rows' own "ours" sides: the ratio is what TLS costs.
        https_hypercorn = _rate_row(
            "https-hypercorn",
            "HTTPS legacy JSON, Hypercorn adapter vs the same over plain HTTP",
            "ours (Hypercorn, TLS)",
            hypercorn.ours,
        )
        https_h11 = _rate_row(
            "https-h11",
            "HTTPS legacy JSON, h11 adapter vs the same over plain HTTP",
            "ours (h11, TLS)",
            h11.ours,
        )
        rows += [https_hypercorn, https_h11]
        # Ten Continue interceptors on every message, against the same SDK samples.
        chained = [
            _rate_row(
                f"{row.key}-chain10", f"{row.title}, 10 interceptors", "ours (10)", row.baseline
            )
            for row in (legacy_json, sse, modern)
        ]
        rows += chained
        targets = [
            Target(legacy_json.ours, "ours-json", "legacy"),
            Target(legacy_json.baseline, "sdk-json", "legacy"),
            Target(production.ours, "ours-json", "legacy"),
            Target(production.baseline, "sdk-json-production", "legacy"),
            Target(sse.ours, "ours-sse", "legacy"),
            Target(sse.baseline, "sdk-sse", "legacy"),
            Target(modern.ours, "ours-json", "modern"),
            Target(modern.baseline, "sdk-json", "modern"),
            Target(hypercorn.ours, "ours-hypercorn", "legacy"),
            Target(hypercorn.baseline, "raw-hypercorn", "raw"),
            Target(h11.ours, "ours-h11", "legacy"),
            Target(h11.baseline, "raw-h11", "raw"),
            Target(adapter.ours, "ours-h11", "legacy"),
            Target(adapter.baseline, "raw-adapter", "raw"),
            Target(https_hypercorn.ours, "ours-https-hypercorn", "legacy"),
            Target(https_h11.ours, "ours-https-h11", "legacy"),
            Target(chained[0].ours, "ours-json-chain10", "legacy"),
            Target(chained[1].ours, "ours-sse-chain10", "legacy"),
            Target(chained[2].ours, "ours-json-chain10", "modern"),
        ]
        self.rows += rows
        live = self._prepare(targets)
        for n in range(self.settings.rounds):
            for target in live:
                self._wrk_sample(target, f"round {n + 1}")
        self._overhead(hypercorn, "the raw Hypercorn echo")
        self._overhead(h11, "the raw h11 echo")
        self._overhead(adapter, "an echo on our own HTTP adapter (the MCP layer alone)")

    def _prepare(self, targets: Sequence[Target]) -> list[Target]:
        """Find each target's URL and session and check one call; warm up; the usable ones."""
        live: list[Target] = []
        if wrk_path() is None:
            for target in targets:
                target.side.unavailable = "wrk missing"
            return live
        for target in targets:
            try:
                target.url = self._url(target.server)
                if target.mode == "legacy":
                    target.session = initialize(target.url)
                reason = probe(target.url, target.mode, target.session)
            except Unavailable as exc:
                target.side.unavailable = str(exc)
                continue
            except BenchError as exc:
                self._fail(target.side, f"{target.server}: {exc}")
                continue
            if reason is not None:
                if target.mode == "modern" and target.server.startswith("ours"):
                    target.side.unavailable = "not served"
                    self.notes.append(f"{target.side.label} 2026-07-28 probe: {reason}")
                else:
                    self._fail(target.side, f"{target.server} ({target.mode}): {reason}")
                continue
            live.append(target)
        if self.settings.warmup:
            for target in live:
                self._wrk_sample(target, "warm-up", warmup=True)
        return live

    def _wrk_sample(
        self, target: Target, label: str, *, warmup: bool = False, pace: bool = False
    ) -> Sample | None:
        assert target.url is not None
        if target.side.unavailable is not None:
            return None
        server = self._servers[target.server]
        watch = Stopwatch(server.pid)
        try:
            watch.start()
            result = run_wrk(
                target.url,
                target.mode,
                target.session,
                seconds=WARMUP_SECONDS if warmup else self.settings.seconds,
                connections=LATENCY_CONNECTIONS if pace else CONNECTIONS,
                load_cpus=self.pinning.load,
                pace_ms=LATENCY_PACE_MS if pace else None,
            )
            watch.stop()
        except (BenchError, OSError) as exc:
            self._fail(target.side, f"{target.server}: {exc}")
            return None
        where = f"{target.side.label}, {target.server}, {target.mode}, {label}"
        self.load_shares.append((result.load_share, where))
        transport_errors = sum(result.errors.values()) - result.errors.get("status", 0)
        if transport_errors:
            self.notes.append(f"wrk socket errors {result.errors} ({where})")
        sample = Sample(
            value=result.rate,
            cpu_us=watch.cpu / result.requests * 1e6 if result.requests else None,
            checked=result.good + result.bad,
            wrong=result.bad,
            first_wrong=result.first_bad,
            extra={
                "requests": result.requests,
                "seconds": result.seconds,
                "p50_ms": result.p50_ms,
                "p99_ms": result.p99_ms,
                "max_ms": result.max_ms,
                "errors": result.errors,
                "load_generator_cpu_share": round(result.load_share, 3),
            },
        )
        if warmup:
            self.warmups.append(sample)
        elif not pace:
            target.side.samples.append(sample)
        return sample

    def _overhead(self, row: Row, stack: str) -> None:
        ours, raw = row.ours.median_cpu(), row.baseline.median_cpu()
        if ours is not None and raw is not None:
            self.notes.append(
                f"our server over {stack}: {ours - raw:,.0f} µs CPU per call"
                f" ({ours:,.0f} vs {raw:,.0f})"
            )

    # -- latency at a fixed moderate load -------------------------------------------------

    def _run_latency(self) -> None:
        rate = f"{LATENCY_RATE} req/s"
        p50, p99 = (
            Row(
                f"latency-{tail}",
                f"latency {tail} at {rate}, legacy JSON vs SDK",
                "ms",
                False,
                # The default server: our own HTTP/1.1 adapter (h11), not Hypercorn.
                Side("ours (h11 adapter)"),
                Side(SDK_DEFAULT),
            )
            for tail in ("p50", "p99")
        )
        self.rows += [p50, p99]
        pairs = [
            (Target(p50.ours, "ours-json", "legacy"), p99.ours),
            (Target(p50.baseline, "sdk-json", "legacy"), p99.baseline),
        ]
        live = self._prepare([target for target, _ in pairs])
        for n in range(self.settings.rounds):
            for target, tail in pairs:
                if target not in live:
                    tail.unavailable = target.side.unavailable
                    continue
                sample = self._wrk_sample(target, f"paced, round {n + 1}", pace=True)
                if sample is None:
                    tail.unavailable = target.side.unavailable
                    continue
                rate_seen = {"rate": sample.value}
                target.side.samples.append(
                    attrs.evolve(
                        sample, value=sample.extra["p50_ms"], extra=sample.extra | rate_seen
                    )
                )
                # The same run: its responses are already counted under p50.
                tail.samples.append(
                    Sample(value=sample.extra["p99_ms"], cpu_us=sample.cpu_us, extra=rate_seen)
                )

    # -- stdio ----------------------------------------------------------------------------

    def _run_stdio(self) -> None:
        row = _rate_row("stdio", "stdio round trips vs SDK", "ours", "SDK", "round trips/s")
        self.rows.append(row)
        sides = [(row.ours, "ours"), (row.baseline, "sdk")]
        live: list[tuple[Side, StdioServer]] = []
        for side, key in sides:
            server = self._stdio.get(key)
            if server is None:
                side.unavailable = self.sdk_reason or "not started"
                continue
            try:
                server.ready(self.pinning.server)
                if self.settings.warmup:
                    self.warmups.append(server.measure(min(1.0, self.settings.loop_seconds)))
            except (BenchError, OSError) as exc:
                self._fail(side, f"{server.name}: {exc}")
                continue
            live.append((side, server))
        for _ in range(self.settings.rounds):
            for side, server in live:
                if side.unavailable is not None:
                    continue
                try:
                    side.samples.append(server.measure(self.settings.loop_seconds))
                except (BenchError, OSError) as exc:
                    self._fail(side, f"{server.name}: {exc}")

    # -- in-process -----------------------------------------------------------------------

    def _run_inprocess(self) -> None:
        sdk = Side("SDK Client(server), legacy")
        objects = _rate_row(
            "inprocess",
            "in-process round trips (memory) vs SDK",
            "ours, objects",
            sdk,
            "round trips/s",
        )
        codec = _rate_row(
            "inprocess-codec",
            "in-process, ours via JSON codec, vs SDK",
            "ours, JSON codec",
            sdk,
            "round trips/s",
        )
        chained = _rate_row(
            "inprocess-chain10",
            "in-process round trips (memory), 10 interceptors, vs SDK",
            "ours, objects, 10 interceptors",
            sdk,
            "round trips/s",
        )
        self.rows += [objects, codec, chained]
        python = sys.executable
        inprocess = [python, "-m", "bench._inprocess"]
        runs = [
            (objects.ours, [*inprocess, "--no-codec"]),
            (chained.ours, [*inprocess, "--no-codec", "--interceptors", "10"]),
            (sdk, [str(self.sdk), str(SERVER_SCRIPT), "inprocess"] if self.sdk else None),
            (codec.ours, [python, "-m", "bench._inprocess"]),
        ]
        for _ in range(self.settings.rounds):
            for side, command in runs:
                if command is None:
                    side.unavailable = self.sdk_reason
                    continue
                if side.unavailable is not None:
                    continue
                try:
                    side.samples.append(
                        _inprocess.run(command, self.settings.loop_seconds, self.pinning.server)
                    )
                except BenchError as exc:
                    self._fail(side, str(exc))

    # -- memory ---------------------------------------------------------------------------

    def _run_memory(self) -> None:
        session, stream = (
            Row(key, title, "KiB", False, Side("ours"), Side("SDK"))
            for key, title in (
                ("memory-session", "memory per session vs SDK"),
                ("memory-stream", "memory per open GET SSE stream vs SDK"),
            )
        )
        self.rows += [session, stream]
        for n in range(self.settings.rounds):
            for side, tail, key in (
                (session.ours, stream.ours, f"memory-ours-{n}"),
                (session.baseline, stream.baseline, f"memory-sdk-{n}"),
            ):
                if side.unavailable is not None:
                    continue
                try:
                    url = self._url(key)
                    per_session, per_stream = _memory.measure(
                        url, self._servers[key].pid, self.settings.sessions
                    )
                except Unavailable as exc:
                    side.unavailable = tail.unavailable = str(exc)
                    continue
                except BenchError as exc:
                    self._fail(side, f"{key}: {exc}")
                    tail.unavailable = side.unavailable
                    continue
                finally:
                    # A fresh server per measurement: the allocator keeps what was freed.
                    if key in self._servers:
                        self._servers[key].stop()
                side.samples.append(per_session)
                tail.samples.append(per_stream)

    # -- stores ---------------------------------------------------------------------------

    def _run_stores(self) -> None:
        smoke = not self.settings.warmup
        sessions, events = (300, 600) if smoke else (5_000, 20_000)
        titles = {
            "create": ("session create vs memory store", "creates/s", True),
            "get-p50": ("session lookup p50 vs memory store", "µs", False),
            "get-p99": ("session lookup p99 vs memory store", "µs", False),
            "append": ("event append vs memory store", "appends/s", True),
            "replay": ("event replay vs memory store", "events/s", True),
        }
        baseline = {metric: Side("memory") for metric in _stores.METRICS}
        rows: dict[tuple[str, str], Row] = {}
        for backend in ("sqlite", "redis"):
            for metric in _stores.METRICS:
                title, unit, higher = titles[metric]
                rows[backend, metric] = Row(
                    f"stores-{backend}-{metric}",
                    f"{backend}: {title}",
                    unit,
                    higher,
                    Side(backend),
                    baseline[metric],
                )
        self.rows += list(rows.values())
        self.notes.append(
            f"stores rows: {sessions} sessions and {events} events (200-byte messages on"
            f" {_STREAMS} streams) per measurement, each on a fresh store in this process"
        )
        for _ in range(self.settings.rounds):
            for backend in _stores.BACKENDS:
                sides = (
                    [baseline[m] for m in _stores.METRICS]
                    if backend == "memory"
                    else [rows[backend, m].ours for m in _stores.METRICS]
                )
                if sides[0].unavailable is not None:
                    continue
                try:
                    figures = _stores.measure(backend, sessions, events)
                except StoreError as exc:
                    for side in sides:
                        side.unavailable = str(exc)
                    continue
                for metric, side in zip(_stores.METRICS, sides, strict=True):
                    side.samples.append(Sample(value=figures[metric]))

    # -- helpers --------------------------------------------------------------------------

    def _fail(self, side: Side, message: str) -> None:
        side.unavailable = "error, see below"
        self.failures.append(message)


_CHAIN10 = ["env", "BENCH_INTERCEPTORS=10"]


def _rate_row(
    key: str, title: str, ours: Side | str, baseline: Side | str, unit: str = "req/s"
) -> Row:
    """A row where more is better; a side given by its label starts empty."""
    return Row(
        key,
        title,
        unit,
        True,
        ours if isinstance(ours, Side) else Side(ours),
        baseline if isinstance(baseline, Side) else Side(baseline),
    )
