"""In-process round trips over the memory transport, each side in a fresh child process.

``python -m bench._inprocess --seconds S`` times our client against ``bench/servers/ours.py``
through :func:`mcptrio.testing.open_memory_client` and prints a JSON object with ``calls``,
``seconds``, ``cpu_seconds`` and ``bad``; ``sdk_server.py inprocess`` does the same with the
SDK's client and server.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence

from bench._procs import BenchError, pinned
from bench._report import Sample

_CHECK_EVERY = 64


def run(command: Sequence[str], seconds: float, cpus: frozenset[int] | None) -> Sample:
    """Run one in-process child (pinned to ``cpus``) and turn its report into a sample.

    ``cpu_us`` is the child's CPU time per round trip: client and server together.
    """
    try:
        done = subprocess.run(
            [*command, "--seconds", str(seconds)],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            preexec_fn=pinned(cpus),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(command)} did not finish") from exc
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
        calls, elapsed, bad = int(report["calls"]), float(report["seconds"]), int(report["bad"])
        cpu = float(report["cpu_seconds"])
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise BenchError(
            f"{' '.join(command)} exited with {done.returncode} and no report:\n"
            f"{done.stdout[-1000:]}\n{done.stderr[-3000:]}"
        ) from exc
    return Sample(
        value=calls / elapsed,
        cpu_us=cpu / calls * 1e6,
        checked=calls,
        wrong=bad,
        first_wrong="echoed text differs" if bad else "",
    )


async def _round_trips(seconds: float, serialize: bool, interceptors: int) -> dict[str, float]:
    from bench.servers.ours import attach_interceptors, server
    from mcptrio.testing import open_memory_client
    from mcptrio.types import TextContent

    attach_interceptors(interceptors)
    calls = bad = 0
    async with open_memory_client(server, serialize=serialize) as client:
        await client.call_tool("echo", {"text": "warm-up"})
        start = time.perf_counter()
        cpu_start = time.process_time()
        deadline = start + seconds
        while True:
            text = f"m{calls}"
            result = await client.call_tool("echo", {"text": text})
            calls += 1
            content = result.content[0]
            if not isinstance(content, TextContent) or content.text != text:
                bad += 1
            if calls % _CHECK_EVERY == 0 and time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    return {"calls": calls, "seconds": elapsed, "cpu_seconds": cpu, "bad": bad}


def main() -> None:
    """Entry point of the child process."""
    import trio

    parser = argparse.ArgumentParser(description="time in-memory round trips with our client")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument(
        "--no-codec", action="store_true", help="pass message objects, skipping JSON encoding"
    )
    parser.add_argument(
        "--interceptors",
        type=int,
        default=0,
        help="attach this many interceptors that let every message through",
    )
    args = parser.parse_args()
    report = trio.run(_round_trips, args.seconds, not args.no_codec, args.interceptors)
    print(json.dumps(report), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
