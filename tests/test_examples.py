"""The examples: the notes server in memory, and every example run for real as a process.

Some of these tests are shown in the tutorial (docs/tutorial.rst includes them by name).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from auth_server import AuthServer
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from node_tools import open_http_server

from examples import notes
from mcptrio import (
    InsufficientScope,
    MCPError,
    ResourceNotFound,
    open_client,
    open_http_transport,
    open_stdio_process,
)
from mcptrio.testing import open_memory_client
from mcptrio.types import (
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    EmbeddedResource,
    TextContent,
    TextResourceContents,
)

ROOT = Path(__file__).resolve().parent.parent
# Generous bound for real child processes: far above their ~1 s, far below a hang.
PROCESS_DEADLINE = 30


@pytest.fixture(autouse=True)
def fresh_notebook() -> Iterator[None]:
    """Each test starts from the notebook the server starts with."""
    saved = dict(notes.notes)
    yield
    notes.notes.clear()
    notes.notes.update(saved)


def text_of(block: object) -> str:
    assert isinstance(block, TextContent | TextResourceContents), block
    return block.text


# ---- the notes server, in memory ------------------------------------------------------------


async def test_add_then_search() -> None:
    async with open_memory_client(notes.server) as client:
        added = await client.call_tool(
            "add_note", {"title": "trio", "body": "Structured concurrency", "tags": ["python"]}
        )
        assert not added.is_error
        assert added.structured_content == {
            "title": "trio",
            "body": "Structured concurrency",
            "tags": ["python"],
        }

        found = await client.call_tool("search_notes", {"query": "CONCURRENCY"})
        assert found.structured_content is not None
        assert [n["title"] for n in found.structured_content["notes"]] == ["trio"]


async def test_tools_describe_their_inputs_and_outputs() -> None:
    async with open_memory_client(notes.server) as client:
        tools = {tool.name: tool for tool in await client.all_tools()}
    assert list(tools) == ["add_note", "search_notes", "delete_note"]
    add = tools["add_note"]
    assert add.description == "Add a note to the notebook."
    assert add.input_schema["required"] == ["title", "body"]
    assert add.input_schema["properties"]["body"]["description"] == "The text of the note."
    assert add.output_schema is not None and add.output_schema["required"] == ["title", "body"]
    search = tools["search_notes"].output_schema
    assert search is not None and search["properties"]["notes"]["type"] == "array"
    assert tools["delete_note"].output_schema is None


async def test_search_filters_by_tag() -> None:
    async with open_memory_client(notes.server) as client:
        await client.call_tool("add_note", {"title": "a", "body": "x", "tags": ["red"]})
        await client.call_tool("add_note", {"title": "b", "body": "x", "tags": ["blue"]})
        found = await client.call_tool("search_notes", {"query": "x", "tag": "blue"})
    assert found.structured_content == {
        "query": "x",
        "notes": [{"title": "b", "body": "x", "tags": ["blue"]}],
    }


async def test_a_duplicate_title_is_a_tool_error() -> None:
    async with open_memory_client(notes.server) as client:
        result = await client.call_tool("add_note", {"title": "welcome", "body": "again"})
    # A ToolError becomes an error *result* the model can read, not a protocol error.
    assert result.is_error
    assert "already exists" in text_of(result.content[0])


async def test_bad_arguments_are_reported_to_the_model() -> None:
    async with open_memory_client(notes.server) as client:
        result = await client.call_tool("add_note", {"title": "no body"})
    assert result.is_error
    assert "body" in text_of(result.content[0])


async def test_read_notes_as_resources() -> None:
    async with open_memory_client(notes.server) as client:
        [template] = await client.all_resource_templates()
        assert template.uri_template == "notes://{title}"

        note = await client.read_resource("notes://welcome")
        assert text_of(note.contents[0]).startswith("Notes are kept in memory")

        with pytest.raises(ResourceNotFound):
            await client.read_resource("notes://missing")


async def test_the_index_lists_every_note() -> None:
    async with open_memory_client(notes.server) as client:
        await client.call_tool("add_note", {"title": "a/b c", "body": "odd title"})
        [resource] = await client.all_resources()
        index = await client.read_resource(resource.uri)
    contents = index.contents[0]
    assert isinstance(contents, TextResourceContents)
    assert contents.mime_type == "application/json"
    assert '"uri":"notes://a%2Fb%20c"' in contents.text


@settings(max_examples=50, deadline=None)
@given(title=st.text(min_size=1, max_size=40), body=st.text(max_size=200))
async def test_any_title_can_be_read_back_through_its_uri(title: str, body: str) -> None:
    assume(title not in notes.notes and title != "index")
    async with open_memory_client(notes.server) as client:
        added = await client.call_tool("add_note", {"title": title, "body": body})
        assert not added.is_error
        result = await client.read_resource(notes.note_uri(title))
    del notes.notes[title]
    assert text_of(result.contents[0]) == body


async def test_summarize_prompt_embeds_the_note() -> None:
    async with open_memory_client(notes.server) as client:
        prompt = await client.get_prompt("summarize", {"title": "welcome", "style": "a haiku"})
    first, second = prompt.messages
    assert isinstance(first.content, EmbeddedResource)
    assert first.content.resource.uri == "notes://welcome"
    assert text_of(second.content) == "Summarize the note above in a haiku."


async def test_delete_asks_the_user_first() -> None:
    asked: list[str] = []

    async def decline(request: ElicitRequestFormParams | ElicitRequestURLParams) -> ElicitResult:
        asked.append(request.message)
        return ElicitResult(action="decline")

    async with open_memory_client(notes.server, elicitation_handler=decline) as client:
        result = await client.call_tool("delete_note", {"title": "welcome"})
    assert asked == ["Delete the note 'welcome'?"]
    assert text_of(result.content[0]) == "kept 'welcome'"
    assert "welcome" in notes.notes


async def test_delete_without_a_way_to_ask() -> None:
    async with open_memory_client(notes.server) as client:
        result = await client.call_tool("delete_note", {"title": "welcome"})
    assert text_of(result.content[0]) == "deleted 'welcome'"
    assert notes.notes == {}


# ---- the examples as processes ------------------------------------------------------------


def _env() -> dict[str, str]:
    # The children import ``examples`` and ``mcptrio`` from this checkout.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


async def test_client_script_talks_to_the_notes_server() -> None:
    with trio.fail_after(PROCESS_DEADLINE):
        done = await trio.run_process(
            [sys.executable, "-m", "examples.client"],
            cwd=ROOT,
            env=_env(),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    lines = out.splitlines()
    assert lines[0].startswith("connected to notes 1.0.0 (protocol ")
    assert "tool add_note: Add a note to the notebook." in lines
    assert "  [server info] added note 'trio'" in lines
    assert (
        'add_note -> {"title": "trio", "body": "Structured concurrency.", "tags": ["python"]}'
        in lines
    )
    assert "search_notes -> ['trio']" in lines
    assert "add_note again -> error: a note titled 'trio' already exists; choose another title" in (
        lines
    )
    assert "resource template notes://{title}" in lines
    assert "read notes://trio (text/markdown): Structured concurrency." in lines
    assert "prompt summarize -> 2 messages" in lines
    assert "  [server asks] Delete the note 'trio'? -> yes" in lines
    assert lines[-1] == "delete_note -> deleted 'trio'"


@pytest.mark.parametrize(
    ("command", "server_name"),
    [
        (["-m", "examples.notes"], "notes"),
        (["-m", "mcptrio", "serve", "examples/notes.py"], "notes"),
        (["-m", "mcptrio", "serve", "examples/everything.py"], "mcp-conformance-test-server"),
    ],
    ids=["notes-module", "serve-notes", "serve-everything"],
)
async def test_example_servers_answer_over_stdio(command: list[str], server_name: str) -> None:
    with trio.fail_after(PROCESS_DEADLINE):
        async with (
            open_stdio_process(
                [sys.executable, *command], cwd=ROOT, env=_env(), stderr="capture"
            ) as transport,
            open_client(transport) as client,
        ):
            assert client.server_info.name == server_name
            assert client.server_capabilities.tools is not None
            tools = await client.all_tools()
            assert tools, transport.stderr_text()
            await client.ping()
    assert transport.returncode == 0, transport.stderr_text()


async def test_everything_example_answers_a_tool_call_over_stdio() -> None:
    command = [sys.executable, "-m", "mcptrio", "serve", "examples/everything.py"]
    with trio.fail_after(PROCESS_DEADLINE):
        async with (
            open_stdio_process(command, cwd=ROOT, env=_env(), stderr="capture") as transport,
            open_client(transport) as client,
        ):
            result = await client.call_tool("test_simple_text")
    assert text_of(result.content[0]) == "This is a simple text response for testing."


# ---- the protected notes server, with a real authorization server ----------------------------


async def test_protected_notes_example_checks_tokens_and_scopes(auth_server: AuthServer) -> None:
    command = [sys.executable, "-m", "examples.protected_notes"]
    command += ["--issuer", auth_server.issuer, "--port", "0"]
    with trio.fail_after(PROCESS_DEADLINE):
        async with open_http_server(command, cwd=ROOT) as running:
            url = running.url
            with pytest.raises(MCPError, match="Unauthorized"):
                async with open_http_transport(url) as transport, open_client(transport):
                    pass
            reader = auth_server.mint(audience=url, scopes=["notes:read"], subject="ann")
            async with (
                open_http_transport(url, headers={"authorization": f"Bearer {reader}"}) as t,
                open_client(t) as client,
            ):
                assert [tool.name for tool in await client.all_tools()] == [
                    "whoami",
                    "read_notes",
                ]
                who = await client.call_tool("whoami")
                assert text_of(who.content[0]) == f"ann via {auth_server.client_id}: notes:read"
                with pytest.raises(InsufficientScope, match="insufficient scope") as info:
                    await client.call_tool("add_note", {"title": "t", "body": "b"})
                assert info.value.needed == {"notes:write"}
            writer = auth_server.mint(audience=url, scopes=["notes:read", "notes:write"])
            async with (
                open_http_transport(url, headers={"authorization": f"Bearer {writer}"}) as t,
                open_client(t, mode="2026-07-28") as client,
            ):
                saved = await client.call_tool("add_note", {"title": "t", "body": "b"})
                assert text_of(saved.content[0]) == "saved 't'"
                read = await client.call_tool("read_notes")
                assert read.structured_content == {
                    "welcome": "Only callers with a token get this far.",
                    "t": "b",
                }
