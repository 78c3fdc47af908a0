"""``python -m bench [--smoke] [--only NAME]``: run the benchmarks, print one table, save JSON."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench._http import WRK_INSTALL_HINT, install_wrk, wrk_path
from bench._report import table, validation, write_json
from bench._suite import (
    CONNECTIONS,
    EXTRA_GROUPS,
    GROUPS,
    LATENCY_CONNECTIONS,
    LATENCY_PACE_MS,
    LOAD_SATURATED,
    Settings,
    Suite,
)

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"


def _groups(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = (*GROUPS, *EXTRA_GROUPS)
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark {', '.join(unknown) or text!r}; choose from {', '.join(known)}"
        )
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of mcptrio next to the official SDK and raw HTTP servers,"
        " measured in the same run, alternating; the table shows medians.",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="one short round of everything (seconds, not minutes): checks the benchmarks run",
    )
    parser.add_argument(
        "--only",
        type=_groups,
        action="extend",
        metavar="NAME[,NAME]",
        help=f"run only these benchmarks: {', '.join(GROUPS)} (the default set), or"
        f" {', '.join(EXTRA_GROUPS)} (repeatable)",
    )
    parser.add_argument("--rounds", type=int, help="rounds per benchmark (default 3; smoke 1)")
    parser.add_argument("--duration", type=int, help="seconds per measurement (default 5; smoke 1)")
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the JSON results (default: bench/results/latest.json;"
        " a --smoke run writes none unless given)",
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    if args.smoke:
        base = Settings.smoke()
        if args.rounds is None and args.duration is None:
            return base
        seconds = args.duration or base.seconds
        return Settings(
            rounds=args.rounds or base.rounds,
            seconds=seconds,
            loop_seconds=seconds,
            sessions=base.sessions,
            warmup=False,
        )
    return Settings.full(rounds=args.rounds or 3, seconds=args.duration or 5)


def _wrk_version() -> str:
    wrk = wrk_path()
    if wrk is None:
        return "wrk missing"
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].split(" [")[0] if first else wrk


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; returns the exit status (1 when a response was wrong or a run failed)."""
    args = _parser().parse_args(argv)
    if any(value is not None and value < 1 for value in (args.rounds, args.duration)):
        _parser().error("--rounds and --duration must be at least 1")
    settings = _settings(args)
    groups = args.only or list(GROUPS)
    output = args.output if args.output is not None else (None if args.smoke else DEFAULT_OUTPUT)
    wrk_missing = bool({"http", "latency"} & set(groups)) and install_wrk() is None
    if wrk_missing:
        _log(f"{WRK_INSTALL_HINT}; the HTTP and latency rows will say n/a")
    started = time.time()
    suite = Suite(settings, groups, _log)
    suite.run()
    elapsed = time.time() - started

    mode = "smoke run" if args.smoke else "full run"
    print(
        f"mcptrio benchmarks ({mode}): medians of {settings.rounds} round(s),"
        f" {settings.seconds} s per wrk run, {settings.loop_seconds:g} s per timed loop;"
        f" ours and baseline alternate within each round"
    )
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {suite.pinning.describe()}")
    print(
        f"HTTP load: {_wrk_version()}, 1 thread, {CONNECTIONS} connections; latency rows:"
        f" {LATENCY_CONNECTIONS} connections each waiting {LATENCY_PACE_MS} ms before a request;"
        f" memory rows: {settings.sessions} sessions and streams on a fresh server"
    )
    print()
    print(table(suite.rows))
    print()
    print(
        "ratio: how many times better ours is (rates: ours / baseline; latency and memory:"
        " baseline / ours); CPU µs/req: the server process's utime+stime per request"
    )
    notes = list(suite.notes)
    if wrk_missing:
        notes.insert(0, WRK_INSTALL_HINT)
    if suite.load_shares:
        share, where = max(suite.load_shares)
        verdict = (
            "it may have been the bottleneck there"
            if share > LOAD_SATURATED
            else "so it was not the bottleneck"
        )
        notes.append(f"wrk used at most {share:.0%} of its CPU ({where}): {verdict}")
    for note in notes:
        print(f"note: {note}")
    for failure in suite.failures:
        print(f"FAILED: {failure}")
    checked, wrong, first = validation([*suite.rows], suite.warmups)
    if wrong:
        print(f"RESPONSES WRONG: {wrong} of {checked} checked; first: {first}")
    elif checked:
        print(f"all responses validated ({checked:,} checked, 0 wrong)")
    else:
        print("no responses were checked")
    print(f"finished in {elapsed:.0f} s")
    if output is not None:
        meta = {
            "started": datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(),
            "seconds": round(elapsed, 1),
            "smoke": args.smoke,
            "settings": {
                "rounds": settings.rounds,
                "seconds": settings.seconds,
                "loop_seconds": settings.loop_seconds,
                "sessions": settings.sessions,
                "connections": CONNECTIONS,
            },
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "pinning": suite.pinning.describe(),
                "wrk": _wrk_version(),
            },
            "failures": suite.failures,
        }
        write_json(output, meta, suite.rows, notes, suite.warmups)
        print(f"results written to {output}")
    return 1 if wrong or suite.failures else 0
