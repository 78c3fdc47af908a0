"""A stdio server whose interceptor chain acts on the ``text`` argument of ``tools/call``.

- ``block``: blocked with -32600 "blocked here".
- ``mock``: answered with the text "mocked" without reaching the tool.
- ``shout``: modified to call the tool with "SHOUT".
- ``bad``: modified into a call without a tool name (an invalid modification).
- ``raise``: the interceptor raises.
- ``hold``: paused until cancelled (or an hour).
The ``paused`` tool answers how many messages are held; ``calls`` how often ``echo`` ran.
"""

from __future__ import annotations

from typing import Any

import trio

import mcptrio

controller = mcptrio.PauseController(default_timeout=3600)
chain = mcptrio.InterceptorChain(pause_controller=controller)
server = mcptrio.Server("intercepted", interceptors=chain)
ran: list[str] = []


@server.tool()
async def echo(text: str) -> str:
    """Echo text back."""
    ran.append(text)
    return text


@server.tool()
async def paused() -> int:
    """How many messages are held."""
    return len(controller.paused())


@server.tool()
async def calls() -> int:
    """How often echo ran."""
    return len(ran)


async def act(context: mcptrio.InterceptContext) -> mcptrio.Action:
    if context.kind != "request" or context.method != "tools/call":
        return mcptrio.Continue()
    params: dict[str, Any] = dict(context.message["params"])
    text = (params.get("arguments") or {}).get("text")
    if text == "block":
        return mcptrio.Block(mcptrio.InvalidRequest("blocked here"))
    if text == "mock":
        return mcptrio.Mock({"content": [{"type": "text", "text": "mocked"}]})
    if text == "shout":
        return mcptrio.Modify(
            {**context.message, "params": {**params, "arguments": {"text": "SHOUT"}}}
        )
    if text == "bad":
        del params["name"]
        return mcptrio.Modify({**context.message, "params": params})
    if text == "raise":
        raise RuntimeError("on purpose")
    if text == "hold":
        return mcptrio.Pause()
    return mcptrio.Continue()


chain.register("acts", act)

if __name__ == "__main__":
    trio.run(mcptrio.serve_stdio, server)
