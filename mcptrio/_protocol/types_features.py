"""MCP wire types for the features: tools, resources, prompts, completion, roots,
sampling, elicitation, and the 2026-07-28 multi round-trip (MRTR) types.

Sans-IO. Requests that a legacy server sends to the client (sampling, roots,
elicitation) are, in 2026-07-28, embedded in :class:`InputRequiredResult` instead.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import attrs

from .types_common import (
    Annotations,
    CacheScope,
    ContentBlock,
    Icon,
    Meta,
    ResourceContents,
    ResultType,
    Role,
    SamplingContent,
)
from .types_lifecycle import RequestParams

__all__ = [
    "CallToolRequestParams",
    "CallToolResult",
    "CompleteRequestParams",
    "CompleteResult",
    "Completion",
    "CompletionArgument",
    "CompletionContext",
    "CompletionReference",
    "CreateMessageRequest",
    "CreateMessageRequestParams",
    "CreateMessageResult",
    "ElicitRequest",
    "ElicitRequestFormParams",
    "ElicitRequestParams",
    "ElicitRequestURLParams",
    "ElicitResult",
    "ElicitationCompleteNotificationParams",
    "GetPromptRequestParams",
    "GetPromptResult",
    "InputRequest",
    "InputRequiredResult",
    "InputResponse",
    "ListPromptsResult",
    "ListResourceTemplatesResult",
    "ListResourcesResult",
    "ListRootsRequest",
    "ListRootsResult",
    "ListToolsResult",
    "ModelHint",
    "ModelPreferences",
    "Prompt",
    "PromptArgument",
    "PromptMessage",
    "PromptReference",
    "ReadResourceRequestParams",
    "ReadResourceResult",
    "Resource",
    "ResourceReference",
    "ResourceTemplate",
    "ResourceTemplateReference",
    "ResourceUpdatedNotificationParams",
    "Root",
    "SamplingMessage",
    "SubscribeRequestParams",
    "TaskMetadata",
    "Tool",
    "ToolAnnotations",
    "ToolChoice",
    "ToolExecution",
    "UnsubscribeRequestParams",
]


@attrs.frozen(kw_only=True)
class TaskMetadata:
    """``params.task`` of a task-augmented request (2025-11-25): asks for a task instead."""

    ttl: int | None = None


# --- tools -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ToolAnnotations:
    """Untrusted hints about a tool's behaviour (2025-03-26+)."""

    title: str | None = None
    read_only_hint: bool | None = None
    destructive_hint: bool | None = None
    idempotent_hint: bool | None = None
    open_world_hint: bool | None = None


@attrs.frozen(kw_only=True)
class ToolExecution:
    """How a tool may run as a task (2025-11-25)."""

    task_support: Literal["forbidden", "optional", "required"] | None = None


@attrs.frozen(kw_only=True)
class Tool:
    """A tool the client can call; ``input_schema`` and ``output_schema`` are JSON Schemas."""

    name: str
    input_schema: dict[str, Any]
    title: str | None = None
    description: str | None = None
    output_schema: dict[str, Any] | None = None
    annotations: ToolAnnotations | None = None
    execution: ToolExecution | None = None
    icons: list[Icon] | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class ListToolsResult:
    """Result of ``tools/list``."""

    tools: list[Tool]
    next_cursor: str | None = None
    ttl_ms: int | None = None
    cache_scope: CacheScope | None = None
    result_type: ResultType | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class CallToolResult:
    """Result of ``tools/call``; a failing tool sets ``is_error`` rather than erroring."""

    content: list[ContentBlock]
    structured_content: Any = None
    is_error: bool | None = None
    result_type: ResultType | None = None
    meta: Meta | None = None


# --- resources ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Resource:
    """A resource the server can read."""

    uri: str
    name: str
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    annotations: Annotations | None = None
    size: int | None = None
    icons: list[Icon] | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class ResourceTemplate:
    """A family of resources named by an RFC 6570 URI template."""

    uri_template: str
    name: str
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    annotations: Annotations | None = None
    icons: list[Icon] | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class ListResourcesResult:
    """Result of ``resources/list``."""

    resources: list[Resource]
    next_cursor: str | None = None
    ttl_ms: int | None = None
    cache_scope: CacheScope | None = None
    result_type: ResultType | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class ListResourceTemplatesResult:
    """Result of ``resources/templates/list``."""

    resource_templates: list[ResourceTemplate]
    next_cursor: str | None = None
    ttl_ms: int | None = None
    cache_scope: CacheScope | None = None
    result_type: ResultType | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class ReadResourceResult:
    """Result of ``resources/read``."""

    contents: list[ResourceContents]
    ttl_ms: int | None = None
    cache_scope: CacheScope | None = None
    result_type: ResultType | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class SubscribeRequestParams:
    """Params of ``resources/subscribe`` (legacy)."""

    uri: str
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class UnsubscribeRequestParams:
    """Params of ``resources/unsubscribe`` (legacy)."""

    uri: str
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class ResourceUpdatedNotificationParams:
    """Params of ``notifications/resources/updated``."""

    uri: str
    meta: Meta | None = None


# --- prompts -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PromptArgument:
    """An argument a prompt template accepts."""

    name: str
    title: str | None = None
    description: str | None = None
    required: bool | None = None


@attrs.frozen(kw_only=True)
class Prompt:
    """A prompt or prompt template the server offers."""

    name: str
    title: str | None = None
    description: str | None = None
    arguments: list[PromptArgument] | None = None
    icons: list[Icon] | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class PromptMessage:
    """One message of a prompt."""

    role: Role
    content: ContentBlock


@attrs.frozen(kw_only=True)
class ListPromptsResult:
    """Result of ``prompts/list``."""

    prompts: list[Prompt]
    next_cursor: str | None = None
    ttl_ms: int | None = None
    cache_scope: CacheScope | None = None
    result_type: ResultType | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class GetPromptResult:
    """Result of ``prompts/get``."""

    messages: list[PromptMessage]
    description: str | None = None
    result_type: ResultType | None = None
    meta: Meta | None = None


# --- completion --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PromptReference:
    """Names a prompt to complete an argument of."""

    type: Literal["ref/prompt"] = "ref/prompt"
    name: str
    title: str | None = None


@attrs.frozen(kw_only=True)
class ResourceTemplateReference:
    """Names a resource or URI template to complete a variable of."""

    type: Literal["ref/resource"] = "ref/resource"
    uri: str


ResourceReference = ResourceTemplateReference
"""The 2024-11-05 and 2025-03-26 name of :class:`ResourceTemplateReference`."""

CompletionReference: TypeAlias = PromptReference | ResourceTemplateReference
"""What ``completion/complete`` completes for, told apart by ``type``."""


@attrs.frozen(kw_only=True)
class CompletionArgument:
    """The argument being completed and its partial value."""

    name: str
    value: str


@attrs.frozen(kw_only=True)
class CompletionContext:
    """Already-resolved arguments that a completion may depend on (2025-06-18+)."""

    arguments: dict[str, str] | None = None


@attrs.frozen(kw_only=True)
class Completion:
    """Completion values (at most 100) and whether there are more."""

    values: list[str]
    total: int | None = None
    has_more: bool | None = None


@attrs.frozen(kw_only=True)
class CompleteRequestParams:
    """Params of ``completion/complete``."""

    ref: CompletionReference
    argument: CompletionArgument
    context: CompletionContext | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class CompleteResult:
    """Result of ``completion/complete``."""

    completion: Completion
    result_type: ResultType | None = None
    meta: Meta | None = None


# --- roots -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Root:
    """A directory or file the server may operate on (a ``file://`` URI)."""

    uri: str
    name: str | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class ListRootsResult:
    """Result of ``roots/list``."""

    roots: list[Root]
    result_type: ResultType | None = None
    meta: Meta | None = None


# --- sampling ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ModelHint:
    """A hint for model selection, matched as a substring of model names."""

    name: str | None = None


@attrs.frozen(kw_only=True)
class ModelPreferences:
    """Advisory priorities (0..1) and hints for model selection."""

    hints: list[ModelHint] | None = None
    cost_priority: float | None = None
    speed_priority: float | None = None
    intelligence_priority: float | None = None


@attrs.frozen(kw_only=True)
class ToolChoice:
    """How a sampled model may use tools (2025-11-25+)."""

    mode: Literal["auto", "required", "none"] | None = None


@attrs.frozen(kw_only=True)
class SamplingMessage:
    """A message sent to or received from a model; ``content`` is one block or a list."""

    role: Role
    content: SamplingContent | list[SamplingContent]
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class CreateMessageRequestParams:
    """Params of ``sampling/createMessage``."""

    messages: list[SamplingMessage]
    max_tokens: int
    model_preferences: ModelPreferences | None = None
    system_prompt: str | None = None
    include_context: Literal["none", "thisServer", "allServers"] | None = None
    temperature: float | None = None
    stop_sequences: list[str] | None = None
    metadata: dict[str, Any] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    task: TaskMetadata | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class CreateMessageResult:
    """Result of ``sampling/createMessage``: the sampled message and the model used."""

    role: Role
    content: SamplingContent | list[SamplingContent]
    model: str
    stop_reason: str | None = None
    result_type: ResultType | None = None
    meta: Meta | None = None


# --- elicitation -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ElicitRequestFormParams:
    """Params of a form-mode ``elicitation/create`` (a missing ``mode`` means form)."""

    mode: Literal["form"] = "form"
    message: str
    requested_schema: dict[str, Any]
    task: TaskMetadata | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class ElicitRequestURLParams:
    """Params of a URL-mode ``elicitation/create`` (2025-11-25+; ``elicitationId`` only then)."""

    mode: Literal["url"] = "url"
    message: str
    url: str
    elicitation_id: str | None = None
    task: TaskMetadata | None = None
    meta: Meta | None = None


ElicitRequestParams: TypeAlias = ElicitRequestFormParams | ElicitRequestURLParams
"""Params of ``elicitation/create``, told apart by ``mode``."""


@attrs.frozen(kw_only=True)
class ElicitResult:
    """Result of ``elicitation/create``; ``content`` only for an accepted form."""

    action: Literal["accept", "decline", "cancel"]
    content: dict[str, Any] | None = None
    result_type: ResultType | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class ElicitationCompleteNotificationParams:
    """Params of ``notifications/elicitation/complete`` (2025-11-25)."""

    elicitation_id: str
    meta: Meta | None = None


# --- 2026 multi round-trip requests ------------------------------------------------------


@attrs.frozen(kw_only=True)
class CreateMessageRequest:
    """A sampling request embedded in :class:`InputRequiredResult`."""

    method: Literal["sampling/createMessage"] = "sampling/createMessage"
    params: CreateMessageRequestParams


@attrs.frozen(kw_only=True)
class ListRootsRequest:
    """A roots request embedded in :class:`InputRequiredResult`."""

    method: Literal["roots/list"] = "roots/list"
    params: RequestParams | None = None


@attrs.frozen(kw_only=True)
class ElicitRequest:
    """An elicitation request embedded in :class:`InputRequiredResult`."""

    method: Literal["elicitation/create"] = "elicitation/create"
    params: ElicitRequestParams


InputRequest: TypeAlias = CreateMessageRequest | ListRootsRequest | ElicitRequest
"""A request the server needs the client to fulfil before a retry, told apart by ``method``."""

InputResponse: TypeAlias = CreateMessageResult | ListRootsResult | ElicitResult
"""The client's answer to an :data:`InputRequest`, told apart by its required members."""


@attrs.frozen(kw_only=True)
class InputRequiredResult:
    """2026-07-28: the server needs input; retry with ``inputResponses`` and ``requestState``."""

    result_type: Literal["input_required"] = "input_required"
    input_requests: dict[str, InputRequest] | None = None
    request_state: str | None = None
    meta: Meta | None = None


# --- requests that MRTR can retry --------------------------------------------------------


@attrs.frozen(kw_only=True)
class CallToolRequestParams:
    """Params of ``tools/call``; ``task`` is 2025-11-25, the MRTR fields 2026-07-28."""

    name: str
    arguments: dict[str, Any] | None = None
    task: TaskMetadata | None = None
    input_responses: dict[str, InputResponse] | None = None
    request_state: str | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class ReadResourceRequestParams:
    """Params of ``resources/read``; the MRTR fields are 2026-07-28."""

    uri: str
    input_responses: dict[str, InputResponse] | None = None
    request_state: str | None = None
    meta: Meta | None = None


@attrs.frozen(kw_only=True)
class GetPromptRequestParams:
    """Params of ``prompts/get``; the MRTR fields are 2026-07-28."""

    name: str
    arguments: dict[str, str] | None = None
    input_responses: dict[str, InputResponse] | None = None
    request_state: str | None = None
    meta: Meta | None = None
