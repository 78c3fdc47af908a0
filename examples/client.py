"""A client that starts the notes server over stdio and uses every kind of feature it has.

Run it from the repository root with ``python -m examples.client``. It spawns
``examples/notes.py`` as a child process (the way an MCP host would), lists and calls
tools, reads resources, renders a prompt, prints what comes back, and stops the child.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import trio

from mcptrio import open_client, open_stdio_process
from mcptrio.types import (
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    LoggingMessageNotificationParams,
    TextContent,
    TextResourceContents,
)

NOTES_SERVER = Path(__file__).with_name("notes.py")


async def show_log(message: LoggingMessageNotificationParams) -> None:
    """Print log messages the server sends while it works."""
    print(f"  [server {message.level}] {message.data}")


async def confirm(request: ElicitRequestFormParams | ElicitRequestURLParams) -> ElicitResult:
    """Answer the server's questions; a real host would ask its user."""
    print(f"  [server asks] {request.message} -> yes")
    return ElicitResult(action="accept", content={"confirm": True})


async def main() -> None:
    command = [sys.executable, "-m", "mcptrio", "serve", str(NOTES_SERVER)]
    # Nothing in mcptrio takes a timeout= argument: bound the whole session here.
    with trio.fail_after(30):
        async with (
            open_stdio_process(command) as transport,
            open_client(transport, on_log=show_log, elicitation_handler=confirm) as client,
        ):
            info = client.server_info
            print(f"connected to {info.name} {info.version} (protocol {client.protocol_version})")

            for tool in await client.all_tools():
                print(f"tool {tool.name}: {tool.description}")

            added = await client.call_tool(
                "add_note", {"title": "trio", "body": "Structured concurrency.", "tags": ["python"]}
            )
            print("add_note ->", json.dumps(added.structured_content))

            found = await client.call_tool("search_notes", {"query": "concurrency"})
            assert found.structured_content is not None
            titles = [note["title"] for note in found.structured_content["notes"]]
            print("search_notes ->", titles)

            duplicate = await client.call_tool("add_note", {"title": "trio", "body": "again"})
            assert isinstance(duplicate.content[0], TextContent)
            print("add_note again -> error:", duplicate.content[0].text)

            for resource in await client.all_resources():
                print(f"resource {resource.uri}: {resource.description}")
            for template in await client.all_resource_templates():
                print(f"resource template {template.uri_template}")
            index = await client.read_resource("notes://index")
            note = await client.read_resource("notes://trio")
            for contents in (*index.contents, *note.contents):
                assert isinstance(contents, TextResourceContents)
                print(f"read {contents.uri} ({contents.mime_type}): {contents.text}")

            prompt = await client.get_prompt("summarize", {"title": "trio"})
            print(f"prompt summarize -> {len(prompt.messages)} messages")
            for message in prompt.messages:
                print(f"  {message.role}: {message.content.type}")

            deleted = await client.call_tool("delete_note", {"title": "trio"})
            assert isinstance(deleted.content[0], TextContent)
            print("delete_note ->", deleted.content[0].text)


if __name__ == "__main__":
    trio.run(main)
