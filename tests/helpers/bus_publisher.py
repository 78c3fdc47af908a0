"""Publishes change events on a Redis channel from a process of its own, for the change-bus tests.

Usage: ``python bus_publisher.py URL CHANNEL COUNT``. Publishes ``COUNT`` ``resource_updated``
events (uris ``test://0`` .. ``test://COUNT-1``, in that order), prints one JSON line
``{"origin": <bus id>, "sent": <events Redis accepted>}`` and exits; exit status 1 when Redis
did not accept every event.
"""

from __future__ import annotations

import json
import sys

import trio

from mcptrio._state.change_bus import ChangeEvent
from mcptrio._state.redis_bus import RedisChangeBus


async def main(url: str, channel: str, count: int) -> int:
    bus = RedisChangeBus(url, channel=channel)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(bus.serve)
            for index in range(count):
                await bus.publish(ChangeEvent("resource_updated", uri=f"test://{index}"))
            nursery.cancel_scope.cancel()
    sent = bus.statistics().sent
    print(json.dumps({"origin": bus.id, "sent": sent}), flush=True)
    return 0 if sent == count else 1


if __name__ == "__main__":
    sys.exit(trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3])))
