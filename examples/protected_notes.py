"""A notes server that answers only callers holding an OAuth access token.

The server is an OAuth 2.1 resource server: clients get tokens from the authorization server
named on the command line (found through ``/.well-known/oauth-protected-resource/mcp``), and
each tool asks for the scopes it needs. Run it with::

    python -m examples.protected_notes --issuer https://auth.example.com --port 8000

or through the command line, configured from the environment::

    MCPTRIO_HTTP__AUTH__AUTHORIZATION_SERVERS=https://auth.example.com \\
        python -m mcptrio serve examples/protected_notes.py --transport http
"""

from __future__ import annotations

import argparse
from functools import partial

import trio

import mcptrio
from mcptrio import current_request

server = mcptrio.Server(
    "protected-notes",
    version="1.0.0",
    instructions="Read notes with read_notes (scope notes:read); add them with add_note"
    " (scope notes:write).",
)
notes: dict[str, str] = {"welcome": "Only callers with a token get this far."}


@server.tool()
def whoami() -> str:
    """Who the access token says the caller is, and what it may do."""
    principal = current_request().principal
    if principal is None:
        return "nobody (this server runs without authorization)"
    return f"{principal.subject} via {principal.client_id}: {' '.join(sorted(principal.scopes))}"


@server.tool(scopes=["notes:read"])
def read_notes() -> dict[str, str]:
    """Every note, by title."""
    return dict(notes)


@server.tool(scopes=["notes:write"])
def add_note(title: str, body: str) -> str:
    """Add a note (or replace the one with that title).

    Args:
        title: The note's title.
        body: Its text.
    """
    notes[title] = body
    return f"saved {title!r}"


@server.resource("notes://all", mime_type="application/json", scopes=["notes:read"])
def all_notes() -> dict[str, str]:
    """Every note, as one JSON document."""
    return dict(notes)


async def main(issuer: str, port: int) -> None:
    """Serve over HTTP, accepting JWT access tokens from ``issuer`` (keys from its JWKS)."""
    auth = mcptrio.AuthConfig(
        authorization_servers=(issuer,),
        scopes_supported=("notes:read", "notes:write"),
        resource_name="Protected notes",
    )
    async with trio.open_nursery() as nursery:
        serve = partial(mcptrio.serve_http, server, mcptrio.HttpConfig(port=port), auth=auth)
        info = await nursery.start(serve)
        print(f"serving on {info.url}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A notes server behind OAuth.")
    parser.add_argument("--issuer", required=True, help="the authorization server's issuer URL")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    trio.run(main, args.issuer, args.port)
