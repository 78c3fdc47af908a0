"""The benchmark server, ours: two trivial tools, ``echo`` and ``add``.

Served by ``python -m mcptrio serve bench/servers/ours.py [--transport http ...]``; the
in-process benchmark imports ``server``. ``bench/servers/sdk_server.py`` is its twin on the
official SDK, so both sides do the same work per call.
"""

from __future__ import annotations

import mcptrio

server = mcptrio.Server("bench", version="1.0.0")


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
