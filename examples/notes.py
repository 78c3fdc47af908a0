"""A small notes server: tools, resources and a prompt over one in-memory notebook.

Run it with ``python -m mcptrio serve examples/notes.py`` or ``python -m examples.notes``
(stdio: an MCP client starts it and talks to it over stdin/stdout). The notes live in
memory and are gone when the process exits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import trio

import mcptrio
from mcptrio import ResourceNotFound, ToolError, current_request, embedded_resource


@dataclass
class Note:
    """A note in the notebook.

    Attributes:
        title: Unique title; also the last part of the note's URI.
        body: The text of the note (Markdown).
        tags: Labels to find the note by.
    """

    title: str
    body: str
    tags: list[str] = field(default_factory=list)


@dataclass
class SearchResults:
    """What search_notes found.

    Attributes:
        query: The text that was searched for.
        notes: Matching notes, in the order they were added.
    """

    query: str
    notes: list[Note]


server = mcptrio.Server(
    "notes",
    version="1.0.0",
    instructions="A notebook: add notes with add_note, find them with search_notes,"
    " read one at notes://{title}.",
)

WELCOME = Note("welcome", "Notes are kept in memory until the server exits.", ["help"])
notes: dict[str, Note] = {WELCOME.title: WELCOME}


def note_uri(title: str) -> str:
    """The resource URI of the note called ``title`` (percent-encoded, so any title works)."""
    return f"notes://{quote(title, safe='')}"


# ---- tools --------------------------------------------------------------------------------


@server.tool()
async def add_note(title: str, body: str, tags: list[str] | None = None) -> Note:
    """Add a note to the notebook.

    Args:
        title: A title no other note has.
        body: The text of the note.
        tags: Labels to find the note by later.
    """
    if title in notes:
        raise ToolError(f"a note titled {title!r} already exists; choose another title")
    if title == "index":
        raise ToolError("'index' is taken by the notes://index resource; choose another title")
    note = Note(title, body, tags or [])
    notes[title] = note
    await current_request().info(f"added note {title!r}")
    # Clients that subscribed to the index learn that it changed.
    await server.notify_resource_updated("notes://index")
    return note


@server.tool()
async def search_notes(query: str, tag: str | None = None) -> SearchResults:
    """Find notes whose title or body contains the query (case-insensitive).

    Args:
        query: Text to look for.
        tag: Only return notes with this tag.
    """
    needle = query.casefold()
    found = [
        note
        for note in notes.values()
        if (needle in note.title.casefold() or needle in note.body.casefold())
        and (tag is None or tag in note.tags)
    ]
    return SearchResults(query=query, notes=found)


@server.tool()
async def delete_note(title: str) -> str:
    """Delete a note, after the user confirms when the client can ask them.

    Args:
        title: The title of the note to delete.
    """
    if title not in notes:
        raise ToolError(f"there is no note titled {title!r}; search_notes lists them")
    ctx = current_request()
    if ctx.client_capabilities.elicitation is not None:
        answer = await ctx.elicit(
            f"Delete the note {title!r}?",
            {"type": "object", "properties": {"confirm": {"type": "boolean"}}},
        )
        if answer.action != "accept" or not (answer.content or {}).get("confirm"):
            return f"kept {title!r}"
    del notes[title]
    await server.notify_resource_updated("notes://index")
    return f"deleted {title!r}"


# ---- resources ----------------------------------------------------------------------------


@server.resource("notes://index", name="index", mime_type="application/json")
async def index() -> list[dict[str, Any]]:
    """Every note's title, URI and tags."""
    return [
        {"title": note.title, "uri": note_uri(note.title), "tags": note.tags}
        for note in notes.values()
    ]


@server.resource("notes://{title}", name="note", mime_type="text/markdown")
async def read_note(title: str) -> str:
    """The body of one note."""
    note = notes.get(title)
    if note is None:
        raise ResourceNotFound(f"there is no note titled {title!r}", {"uri": note_uri(title)})
    return note.body


# ---- prompts ------------------------------------------------------------------------------


@server.prompt(title="Summarize a note")
async def summarize(title: str, style: str = "one sentence") -> list[Any]:
    """Ask the model to summarize a note.

    Args:
        title: The note to summarize.
        style: How long or in what form, e.g. "three bullet points".
    """
    note = notes.get(title)
    if note is None:
        raise mcptrio.InvalidParams(f"there is no note titled {title!r}")
    return [
        embedded_resource(note_uri(title), note.body, mime_type="text/markdown"),
        f"Summarize the note above in {style}.",
    ]


if __name__ == "__main__":
    trio.run(mcptrio.serve_stdio, server)
