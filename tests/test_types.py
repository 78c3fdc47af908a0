"""Tests for the public wire types in mcptrio.types."""

from __future__ import annotations

import typing
from typing import Any, Literal, get_args, get_origin

import attrs
import pytest

from mcptrio import types as t

CLASSES = sorted(
    (obj for obj in vars(t).values() if isinstance(obj, type) and attrs.has(obj)),
    key=lambda cls: cls.__name__,
)
DISCRIMINATORS = ("type", "mode", "method", "result_type")


def test_every_public_name_is_exported_and_documented() -> None:
    assert sorted(t.__all__) == sorted(set(t.__all__))
    for name in t.__all__:
        assert hasattr(t, name), name
    for cls in CLASSES:
        assert cls.__name__ in t.__all__
        assert cls.__doc__ and cls.__doc__.strip(), cls.__name__
    assert len(CLASSES) >= 90


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_classes_are_frozen_keyword_only_with_none_defaults(cls: type) -> None:
    fields = attrs.fields(cls)
    for field in fields:
        assert field.kw_only, f"{cls.__name__}.{field.name}"
        assert field.name == field.name.lower(), "fields are snake_case"
        if field.default is attrs.NOTHING or field.default is None:
            continue
        # Only discriminators have a default other than None, and it is their only value.
        assert field.name in DISCRIMINATORS, f"{cls.__name__}.{field.name}"
        hints = typing.get_type_hints(cls)
        assert get_origin(hints[field.name]) is Literal
        assert get_args(hints[field.name]) == (field.default,)
    with pytest.raises(TypeError):
        cls(*[None] * max(1, len(fields)))  # positional arguments are refused
    instance = _minimal(cls)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        instance.meta = {}  # type: ignore[attr-defined]


def _minimal(cls: type) -> Any:
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.default is attrs.NOTHING:
            values[field.name] = _placeholder(hints[field.name])
    return cls(**values)


def _placeholder(tp: Any) -> Any:
    if isinstance(tp, type) and attrs.has(tp):
        return _minimal(tp)
    args = get_args(tp)
    if get_origin(tp) is Literal:
        return args[0]
    if args and get_origin(tp) not in (list, dict):
        return _placeholder(args[0])
    return {str: "x", int: 1, float: 1.0, bool: True, bytes: b"x"}.get(tp)


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (t.TextContent, "type", "text"),
        (t.ImageContent, "type", "image"),
        (t.AudioContent, "type", "audio"),
        (t.ResourceLink, "type", "resource_link"),
        (t.EmbeddedResource, "type", "resource"),
        (t.ToolUseContent, "type", "tool_use"),
        (t.ToolResultContent, "type", "tool_result"),
        (t.PromptReference, "type", "ref/prompt"),
        (t.ResourceTemplateReference, "type", "ref/resource"),
        (t.ElicitRequestFormParams, "mode", "form"),
        (t.ElicitRequestURLParams, "mode", "url"),
        (t.CreateMessageRequest, "method", "sampling/createMessage"),
        (t.ListRootsRequest, "method", "roots/list"),
        (t.ElicitRequest, "method", "elicitation/create"),
        (t.InputRequiredResult, "result_type", "input_required"),
    ],
)
def test_discriminators_default_to_their_only_value(cls: type, field: str, value: str) -> None:
    assert getattr(attrs.fields(cls), field).default == value
    assert getattr(_minimal(cls), field) == value


def test_union_aliases_list_the_schema_members() -> None:
    assert set(get_args(t.ContentBlock)) == {
        t.TextContent,
        t.ImageContent,
        t.AudioContent,
        t.ResourceLink,
        t.EmbeddedResource,
    }
    assert set(get_args(t.SamplingContent)) == {
        t.TextContent,
        t.ImageContent,
        t.AudioContent,
        t.ToolUseContent,
        t.ToolResultContent,
    }
    assert set(get_args(t.ResourceContents)) == {t.TextResourceContents, t.BlobResourceContents}
    assert set(get_args(t.CompletionReference)) == {t.PromptReference, t.ResourceTemplateReference}
    assert set(get_args(t.ElicitRequestParams)) == {
        t.ElicitRequestFormParams,
        t.ElicitRequestURLParams,
    }
    assert set(get_args(t.InputRequest)) == {
        t.CreateMessageRequest,
        t.ListRootsRequest,
        t.ElicitRequest,
    }
    assert set(get_args(t.InputResponse)) == {
        t.CreateMessageResult,
        t.ListRootsResult,
        t.ElicitResult,
    }
    assert t.ResourceReference is t.ResourceTemplateReference
    assert set(get_args(t.RequestId)) == {int, str}
    assert set(get_args(t.ProgressToken)) == {int, str}


def test_logging_levels_are_the_rfc5424_names_in_severity_order() -> None:
    assert t.LOGGING_LEVELS == (
        "debug",
        "info",
        "notice",
        "warning",
        "error",
        "critical",
        "alert",
        "emergency",
    )
    assert get_args(t.LoggingLevel) == t.LOGGING_LEVELS


def test_binary_fields_hold_bytes() -> None:
    for cls, name in [
        (t.ImageContent, "data"),
        (t.AudioContent, "data"),
        (t.BlobResourceContents, "blob"),
    ]:
        assert typing.get_type_hints(cls)[name] is bytes


def test_params_and_results_carry_meta() -> None:
    for cls in CLASSES:
        if cls.__name__.endswith(("Params", "Result")):
            assert "meta" in attrs.fields_dict(cls), cls.__name__


@pytest.mark.parametrize(
    "cls",
    [
        t.EmptyResult,
        t.DiscoverResult,
        t.ListToolsResult,
        t.CallToolResult,
        t.ListResourcesResult,
        t.ListResourceTemplatesResult,
        t.ReadResourceResult,
        t.ListPromptsResult,
        t.GetPromptResult,
        t.CompleteResult,
        t.SubscriptionsListenResult,
        t.CreateMessageResult,
        t.ListRootsResult,
        t.ElicitResult,
        t.InputRequiredResult,
        t.DetailedTask,
    ],
    ids=lambda c: c.__name__,
)
def test_2026_results_have_result_type(cls: type) -> None:
    assert "result_type" in attrs.fields_dict(cls)


@pytest.mark.parametrize(
    "cls",
    [
        t.DiscoverResult,
        t.ListToolsResult,
        t.ListResourcesResult,
        t.ListResourceTemplatesResult,
        t.ReadResourceResult,
        t.ListPromptsResult,
    ],
    ids=lambda c: c.__name__,
)
def test_cacheable_results_have_caching_hints(cls: type) -> None:
    fields = attrs.fields_dict(cls)
    assert fields["ttl_ms"].default is None
    assert fields["cache_scope"].default is None


def test_union_of_revisions_fields_are_optional() -> None:
    params = t.CallToolRequestParams(name="add")
    assert (params.arguments, params.task, params.input_responses, params.request_state) == (
        None,
        None,
        None,
        None,
    )
    caps = t.ClientCapabilities()
    assert caps == t.ClientCapabilities(
        experimental=None, roots=None, sampling=None, elicitation=None, tasks=None
    )
    assert t.ServerCapabilities().extensions is None
    assert t.CancelledNotificationParams().request_id is None


def test_task_ttl_is_required_but_nullable() -> None:
    with pytest.raises(TypeError):
        t.Task(task_id="1", status="working", created_at="a", last_updated_at="b")  # type: ignore[call-arg]
    task = t.Task(task_id="1", status="working", created_at="a", last_updated_at="b", ttl=None)
    assert task.ttl is None
    detailed = t.DetailedTask(
        task_id="1", status="completed", created_at="a", last_updated_at="b", ttl_ms=None
    )
    assert detailed.ttl_ms is None
    assert t.TASKS_EXTENSION == "io.modelcontextprotocol/tasks"


def test_instances_compare_by_value() -> None:
    a = t.TextContent(text="hi", annotations=t.Annotations(priority=0.5))
    b = t.TextContent(text="hi", annotations=t.Annotations(priority=0.5))
    assert a == b
    assert a != t.TextContent(text="hi")
    assert hash(a) == hash(b)
