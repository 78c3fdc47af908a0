"""A stdio peer for the stdio tests, served with ``open_stdio_server_transport``.

It first sends a ``ready`` notification (after installing any signal handling, so
tests can rely on it), then answers requests:

- ``echo``: the params as the result.
- ``print``: writes to stdout three ways (``print``, ``os.write(1)``, a subprocess),
  all of which must land on stderr, then answers ``{"ok": true}``.
- ``stderr``: writes ``params.text`` (``params.repeat`` times) to stderr, then answers.
- ``exit``: answers, then dies at once with ``params.code``.
- ``finish``: leaves the transport, then prints one JSON line to the (restored) stdout.
Notifications ``die`` (exit 3 without answering) are also understood; batches are echoed.

Options: ``--ignore-eof`` (keep running after stdin closes), ``--ignore-sigterm``,
``--grandchild`` (start a long-lived process that inherits stdout, report its pid in a
``grandchild`` notification, then exit at once).
"""

from __future__ import annotations

import os
import signal
import sys

import trio

from mcptrio._protocol.jsonrpc import Notification, Request, Response
from mcptrio._transports.stdio import open_stdio_server_transport


async def serve(argv: list[str]) -> int:
    grandchild = None
    if "--grandchild" in argv:
        # Started before the transport opens, so it inherits the real stdout.
        grandchild = await trio.lowlevel.open_process(
            [sys.executable, "-c", "import time; time.sleep(60)"]
        )
    after = 0
    async with open_stdio_server_transport(max_message_bytes=4 * 1024 * 1024) as transport:
        await transport.send(Notification("ready", {"pid": os.getpid()}))
        if grandchild is not None:
            await transport.send(Notification("grandchild", {"pid": grandchild.pid}))
            os._exit(0)
        while True:
            try:
                incoming = await transport.receive()
            except trio.EndOfChannel:
                break
            if isinstance(incoming, list):
                await transport.send_batch(
                    [Response(m.id, m.params or {}) for m in incoming if isinstance(m, Request)]
                )
                continue
            if isinstance(incoming, Notification) and incoming.method == "die":
                os._exit(3)
            if not isinstance(incoming, Request):
                continue
            params = incoming.params or {}
            if incoming.method == "print":
                print("stray print to stdout")
                os.write(1, b"raw write to fd 1\n")
                await trio.run_process([sys.executable, "-c", "print('subprocess output')"])
                await transport.send(Response(incoming.id, {"ok": True}))
            elif incoming.method == "stderr":
                sys.stderr.write(params["text"] * params.get("repeat", 1))
                sys.stderr.flush()
                await transport.send(Response(incoming.id, {"ok": True}))
            elif incoming.method == "exit":
                await transport.send(Response(incoming.id, {}))
                os._exit(params["code"])
            elif incoming.method == "finish":
                after = 1
                await transport.send(Response(incoming.id, {}))
                break
            else:
                await transport.send(Response(incoming.id, params))
    if after:
        print('{"jsonrpc":"2.0","method":"restored"}', flush=True)
    if "--ignore-eof" in argv:
        await trio.sleep_forever()
    return 0


def main() -> int:
    argv = sys.argv[1:]
    if "--ignore-sigterm" in argv:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return trio.run(serve, argv)


if __name__ == "__main__":
    sys.exit(main())
