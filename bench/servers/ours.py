"""The benchmark server, ours: two trivial tools, ``echo`` and ``add``.

Served by ``python -m mcptrio serve bench/servers/ours.py [--transport http ...]``; the
in-process benchmark imports ``server``. ``bench/servers/sdk_server.py`` is its twin on the
official SDK, so both sides do the same work per call.

``BENCH_INTERCEPTORS=N`` in the environment attaches N interceptors that let every
message go on unchanged (what an idle interceptor chain costs).
"""

from __future__ import annotations

import os

import mcptrio

server = mcptrio.Server("bench", version="1.0.0")


async def _let_through(context: mcptrio.InterceptContext) -> mcptrio.Action:
    return mcptrio.Continue()


def attach_interceptors(count: int) -> None:
    """Attach ``count`` interceptors that return ``Continue`` to ``server``."""
    for n in range(count):
        server.interceptors.register(f"continue-{n}", _let_through)


attach_interceptors(int(os.environ.get("BENCH_INTERCEPTORS", "0")))


@server.tool()
async def echo(text: str) -> str:
    """Return ``text`` unchanged.

    Args:
        text: Anything.
    """
    return text


@server.tool()
async def add(a: int, b: int) -> int:
    """Return ``a + b``.

    Args:
        a: First addend.
        b: Second addend.
    """
    return a + b
