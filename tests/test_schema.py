import dataclasses
import enum
import sys
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, NewType, NotRequired, Optional, TypedDict, Union

import attrs
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mcptrio._server.schema import (
    Field,
    OutputSpec,
    PromptArgumentSpec,
    ToolSignature,
    _is_plain_json,
    prompt_arguments_for,
    signature_for,
)
from mcptrio._server.validation import check_schema, compile_validator

# --- user types used by the tests ---------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@attrs.frozen
class Point:
    """A point on the plane.

    Attributes:
        x: Horizontal position.
    """

    x: int
    y: int = 0


@attrs.frozen
class Labelled:
    _label: str  # private attribute: its init argument (and JSON key) is "label"
    tags: tuple[str, ...] = ()


@dataclasses.dataclass
class Item:
    name: str
    where: Point
    color: Color = Color.RED
    note: str | None = None
    counts: list[int] = dataclasses.field(default_factory=list)


class Options(TypedDict):
    """Options for a run.

    Args:
        verbose: Talk more.
    """

    verbose: bool
    level: NotRequired[Level]


@attrs.define
class Tree:
    value: int
    children: list["Tree"] = attrs.Factory(list)


@dataclasses.dataclass
class Folder:
    name: str
    folders: list["Folder"] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Circle:
    radius: float


@dataclasses.dataclass(frozen=True)
class Square:
    side: float
    rounded: bool = False


UserId = NewType("UserId", int)


class Context:
    """Stands in for the server's request context."""


class RequestContext(Context):
    pass


class TextContent:
    """Stands in for a content block class."""


class ImageContent:
    pass


class CallToolResult:
    pass


CONTENT = (TextContent, ImageContent, CallToolResult)


def schema_of(tp: Any) -> dict[str, Any]:
    """The input schema of a one-parameter function taking ``tp``, as the property."""

    def fn(value: tp) -> None:  # type: ignore[valid-type]
        pass

    sig = signature_for(fn)
    prop = dict(sig.input_schema["properties"]["value"])
    if "$defs" in sig.input_schema:
        prop["$defs"] = sig.input_schema["$defs"]
    return prop


def assert_valid_schema(schema: dict[str, Any]) -> None:
    assert check_schema(schema) == [], schema


# --- parameter types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (type(None), {"type": "null"}),
        (Any, {}),
        (object, {}),
        (UserId, {"type": "integer"}),
        (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (Optional[str], {"anyOf": [{"type": "string"}, {"type": "null"}]}),  # noqa: UP045
        (Union[int, str], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),  # noqa: UP007
        (Literal["a"], {"type": "string", "const": "a"}),
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (Literal[1, "a", None], {"enum": [1, "a", None]}),
        (Color, {"type": "string", "enum": ["red", "green"]}),
        (Level, {"type": "integer", "enum": [1, 2]}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (Sequence[str], {"type": "array", "items": {"type": "string"}}),
        (list, {"type": "array"}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        (tuple[()], {"type": "array", "minItems": 0, "maxItems": 0}),
        (set[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        (frozenset[int], {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (Mapping[str, Any], {"type": "object"}),
        (dict, {"type": "object"}),
        (
            list[dict[str, list[int]]],
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "integer"}},
                },
            },
        ),
    ],
)
def test_type_schemas(tp: Any, expected: dict[str, Any]) -> None:
    assert schema_of(tp) == expected
    assert_valid_schema(expected)


def test_root_shape_and_required() -> None:
    def tool(a: int, b: str = "x", c: int | None = None, d: int | None = 1, e: int | None = ...):  # type: ignore[assignment]
        pass

    def strict(a: int | None) -> None:
        pass

    schema = signature_for(tool).input_schema
    assert list(schema) == ["type", "properties", "required", "additionalProperties"]
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["a"]
    assert schema["properties"]["b"] == {"type": "string", "default": "x"}
    assert schema["properties"]["c"] == {
        "anyOf": [{"type": "integer"}, {"type": "null"}],
        "default": None,
    }
    assert schema["properties"]["d"]["default"] == 1
    assert "default" not in schema["properties"]["e"]  # Ellipsis is not JSON
    # Optional without a default is still required (it may be null, but must be given).
    assert signature_for(strict).input_schema["required"] == ["a"]


def test_no_parameters() -> None:
    def ping() -> None:
        pass

    assert signature_for(ping).input_schema == {"type": "object", "additionalProperties": False}


def test_kwargs_allow_additional_properties() -> None:
    def tool(a: int, ctx: Context, **extra: Any) -> None:
        pass

    def only_kwargs(**extra: Any) -> None:
        pass

    sig = signature_for(tool, injected=[Context])
    assert "additionalProperties" not in sig.input_schema
    assert signature_for(only_kwargs).input_schema == {"type": "object"}
    args, kwargs = sig.bind({"a": 1, "other": [1], "ctx": "spoofed"})
    # Extra arguments pass through raw, but never onto a parameter the server fills in.
    assert (args, kwargs) == ([], {"a": 1, "other": [1]})


def test_unannotated_parameters_accept_anything() -> None:
    def tool(a, b=3):  # type: ignore[no-untyped-def]
        pass

    schema = signature_for(tool).input_schema
    assert schema["properties"] == {"a": {}, "b": {"default": 3}}


def test_defaults_are_json() -> None:
    def tool(
        color: Color = Color.GREEN,
        where: Point = Point(1, 2),
        tags: frozenset[str] = frozenset(),
        pair: tuple[int, int] = (1, 2),
        ratio: float = float("inf"),
        blob: Any = b"x",
    ) -> None:
        pass

    props = signature_for(tool).input_schema["properties"]
    assert props["color"]["default"] == "green"
    assert props["where"]["default"] == {"x": 1, "y": 2}
    assert props["tags"]["default"] == []
    assert props["pair"]["default"] == [1, 2]
    assert "default" not in props["ratio"]  # not representable in JSON
    assert "default" not in props["blob"]


# --- classes ------------------------------------------------------------------------------


def test_attrs_class_is_inlined_when_used_once() -> None:
    schema = schema_of(Point)
    assert schema == {
        "type": "object",
        "description": "A point on the plane.",
        "properties": {
            "x": {"type": "integer", "description": "Horizontal position."},
            "y": {"type": "integer", "default": 0},
        },
        "required": ["x"],
        "additionalProperties": False,
    }


def test_attrs_private_attribute_uses_init_name() -> None:
    schema = schema_of(Labelled)
    assert list(schema["properties"]) == ["label", "tags"]
    assert schema["required"] == ["label"]


def test_dataclass_schema() -> None:
    schema = schema_of(Item)
    assert schema["required"] == ["name", "where"]
    assert "description" not in schema  # the generated "Item(name: str, ...)" is not a doc
    assert schema["properties"]["color"] == {
        "type": "string",
        "enum": ["red", "green"],
        "default": "red",
    }
    assert schema["properties"]["counts"] == {"type": "array", "items": {"type": "integer"}}
    assert schema["properties"]["where"]["type"] == "object"
    assert_valid_schema(schema)


def test_typeddict_schema() -> None:
    schema = schema_of(Options)
    assert schema == {
        "type": "object",
        "description": "Options for a run.",
        "properties": {
            "verbose": {"type": "boolean", "description": "Talk more."},
            "level": {"type": "integer", "enum": [1, 2]},
        },
        "required": ["verbose"],
        "additionalProperties": False,
    }


def test_repeated_class_goes_to_defs() -> None:
    def tool(a: Point, b: list[Point], c: Point | None = None) -> None:
        pass

    schema = signature_for(tool).input_schema
    assert schema["properties"]["a"] == {"$ref": "#/$defs/Point"}
    assert schema["properties"]["b"] == {"type": "array", "items": {"$ref": "#/$defs/Point"}}
    assert schema["$defs"]["Point"]["properties"]["x"]["type"] == "integer"
    assert_valid_schema(schema)
    validator = compile_validator(schema)
    assert validator.is_valid({"a": {"x": 1}, "b": [{"x": 2, "y": 3}]})
    assert validator.errors({"a": {"x": "no"}, "b": []}) != []


def test_recursive_class_uses_defs() -> None:
    schema = schema_of(Tree)
    defs = schema.pop("$defs")
    assert schema == {"$ref": "#/$defs/Tree"}
    assert defs["Tree"]["properties"]["children"] == {
        "type": "array",
        "items": {"$ref": "#/$defs/Tree"},
    }


@attrs.frozen
class Husband:
    name: str
    wife: "Wife | None" = None


@attrs.frozen
class Wife:
    name: str
    husband: Husband | None = None


def test_mutually_recursive_classes() -> None:
    schema = schema_of(Husband)
    assert_valid_schema(schema)
    # Wife is referenced once and inlined; Husband closes the cycle and stays in $defs.
    assert set(schema["$defs"]) == {"Husband"}
    wife = schema["$defs"]["Husband"]["properties"]["wife"]["anyOf"][0]
    assert wife["properties"]["husband"]["anyOf"][0] == {"$ref": "#/$defs/Husband"}
    validator = compile_validator(schema)
    assert validator.is_valid({"name": "h", "wife": {"name": "w", "husband": {"name": "h2"}}})
    assert not validator.is_valid({"name": "h", "wife": {"name": "w", "husband": {"x": 1}}})


def test_two_classes_with_the_same_name() -> None:
    Other = attrs.make_class("Point", {"z": attrs.field(type=str)})

    def tool(a: Point, b: Other, c: Point, d: Other) -> None:  # type: ignore[valid-type]
        pass

    schema = signature_for(tool).input_schema
    assert set(schema["$defs"]) == {"Point", "Point2"}
    assert schema["properties"]["d"] == {"$ref": "#/$defs/Point2"}


def test_field_metadata_description() -> None:
    @attrs.frozen
    class Documented:
        a: int = attrs.field(metadata={"description": "From metadata."})

    assert schema_of(Documented)["properties"]["a"]["description"] == "From metadata."


# --- Annotated and Field ------------------------------------------------------------------


def test_annotated_description_and_field() -> None:
    def tool(
        a: Annotated[int, "How many."],
        b: Annotated[int, Field(ge=0, lt=10, title="B", examples=[1, 2])],
        c: Annotated[str, Field(min_length=1, max_length=5, pattern="^[a-z]+$")] = "x",
        d: Annotated[list[int], Field(min_length=1, description="Some ints.")] = [1],  # noqa: B006
        e: Annotated[float, Field(gt=0.5, le=1, extra={"x-mcp-header": "E"})] = 1.0,
        f: Annotated[dict[str, int], Field(max_length=3)] | None = None,
    ) -> None:
        """Tool.

        Args:
            a: Docstring loses to Annotated.
            b: Docstring is used when Annotated has no description.
        """

    props = signature_for(tool).input_schema["properties"]
    assert props["a"] == {"type": "integer", "description": "How many."}
    assert props["b"] == {
        "type": "integer",
        "title": "B",
        "minimum": 0,
        "exclusiveMaximum": 10,
        "examples": [1, 2],
        "description": "Docstring is used when Annotated has no description.",
    }
    assert props["c"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 5,
        "pattern": "^[a-z]+$",
        "default": "x",
    }
    assert props["d"] == {
        "type": "array",
        "items": {"type": "integer"},
        "description": "Some ints.",
        "minItems": 1,
        "default": [1],
    }
    assert props["e"] == {
        "type": "number",
        "exclusiveMinimum": 0.5,
        "maximum": 1,
        "x-mcp-header": "E",
        "default": 1.0,
    }
    assert props["f"]["anyOf"][0] == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
        "maxProperties": 3,
    }


def test_field_constraints_are_enforced_by_validation() -> None:
    def tool(n: Annotated[int, Field(ge=1, le=3)], s: Annotated[str, Field(pattern="^a")]) -> None:
        pass

    validator = compile_validator(signature_for(tool).input_schema)
    assert validator.is_valid({"n": 2, "s": "abc"})
    errors = validator.errors({"n": 0, "s": "b"})
    assert [line.split(":")[0] for line in errors] == ["n", "s"]


def test_field_checks_its_own_arguments() -> None:
    with pytest.raises(ValueError, match="not a valid regex"):
        Field(pattern="((")
    with pytest.raises(ValueError):
        Field(min_length=-1)
    assert Field(examples=[1, 2]).examples == (1, 2)
    with pytest.raises(TypeError, match="list of examples"):
        Field(examples="abc")


def test_annotated_inside_containers() -> None:
    schema = schema_of(list[Annotated[int, Field(ge=0), "An index."]])
    assert schema == {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "description": "An index."},
    }


# --- docstrings and description -----------------------------------------------------------


def test_descriptions_from_docstring_styles() -> None:
    def google(a: int, b: Point) -> None:
        """Google tool.

        Args:
            a: The a.
            b: The point, overriding the class description.
        """

    def sphinx(a: int) -> None:
        """Sphinx tool.

        :param a: The a.
        """

    def numpy(a: int) -> None:
        """NumPy tool.

        Parameters
        ----------
        a : int
            The a.
        """

    for fn in (google, sphinx, numpy):
        sig = signature_for(fn)
        assert sig.description is not None and sig.description.endswith("tool.")
        assert sig.input_schema["properties"]["a"]["description"] == "The a."
    point = signature_for(google).input_schema["properties"]["b"]
    assert point["description"] == "The point, overriding the class description."


def test_no_docstring_means_no_description() -> None:
    def tool(a: int) -> None:
        pass

    sig = signature_for(tool)
    assert sig.description is None
    assert "description" not in sig.input_schema["properties"]["a"]


# --- skipping and injection -----------------------------------------------------------------


def test_skip_args_and_injected_parameters() -> None:
    async def tool(ctx: RequestContext, a: int, *rest: int, secret: str = "", b: int = 1) -> None:
        pass

    sig = signature_for(tool, skip={"secret"}, injected=[Context])
    assert list(sig.input_schema["properties"]) == ["a", "b"]
    assert dict(sig.injected) == {"ctx": Context}
    assert sig.bind({"a": 1}) == ([], {"a": 1})


def test_injected_parameter_may_not_be_positional_only() -> None:
    def tool(ctx: Context, /, a: int) -> None:
        pass

    with pytest.raises(TypeError, match=r"'ctx'.*positional-only"):
        signature_for(tool, injected=[Context])


def test_bound_methods_partials_and_callables() -> None:
    import functools

    class Tools:
        def method(self, a: int) -> int:
            """Method."""
            return a

        def __call__(self, b: str) -> str:
            return b

    def base(a: int, b: str) -> None:
        pass

    assert list(signature_for(Tools().method).input_schema["properties"]) == ["a"]
    assert signature_for(Tools().method).description == "Method."
    assert list(signature_for(Tools()).input_schema["properties"]) == ["b"]
    assert list(signature_for(functools.partial(base, 1)).input_schema["properties"]) == ["b"]


# --- unsupported types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "needle"),
    [
        (bytes, "unsupported type bytes"),
        (list[bytes], "unsupported type bytes in list[bytes]"),
        (dict[int, str], "use str keys"),
        (Literal[b"x"], "not a JSON string"),
        (complex, "unsupported type complex"),
    ],
)
def test_unsupported_annotations_name_function_parameter_and_type(tp: Any, needle: str) -> None:
    def my_tool(ok: int, bad: tp) -> None:  # type: ignore[valid-type]
        pass

    with pytest.raises(TypeError) as info:
        signature_for(my_tool)
    message = str(info.value)
    assert "my_tool" in message
    assert "parameter 'bad'" in message
    assert needle in message


def test_unsupported_type_inside_a_class_names_the_field() -> None:
    @attrs.frozen
    class Blob:
        data: bytes

    def upload(blob: Blob) -> None:
        pass

    with pytest.raises(TypeError, match=r"bytes in field 'data' of class .*Blob"):
        signature_for(upload)


def test_unsupported_return_type() -> None:
    def tool() -> bytes:
        return b""

    with pytest.raises(TypeError, match=r"return type of .*tool.*bytes"):
        signature_for(tool)


# --- postponed annotations ----------------------------------------------------------------

FUTURE_SOURCE = '''
from __future__ import annotations

import dataclasses
from typing import Annotated, NotRequired, TypedDict

import attrs

from mcptrio._server.schema import Field


@attrs.frozen
class Node:
    value: int
    children: list[Node] = attrs.Factory(list)


@dataclasses.dataclass
class Box:
    node: Node | None
    size: Annotated[int, Field(ge=0)] = 0


class Opts(TypedDict, total=False):
    depth: int
    name: str


class Req(TypedDict):
    a: int
    b: NotRequired[str]


def tool(box: Box, opts: Opts, req: Req, limit: Annotated[int, "Max."] = 3) -> Node:
    """Walk a box."""
    raise NotImplementedError


def broken(x: Missing) -> None:  # noqa: F821
    pass
'''


@pytest.fixture(scope="module")
def future_module() -> types.ModuleType:
    module = types.ModuleType("mcptrio_test_future_annotations")
    sys.modules[module.__name__] = module
    exec(compile(FUTURE_SOURCE, module.__name__, "exec"), module.__dict__)
    return module


def test_postponed_annotations(future_module: types.ModuleType) -> None:
    sig = signature_for(future_module.tool)
    schema = sig.input_schema
    assert_valid_schema(schema)
    assert schema["required"] == ["box", "opts", "req"]
    assert schema["properties"]["limit"] == {"type": "integer", "description": "Max.", "default": 3}
    assert "required" not in schema["properties"]["opts"]
    assert schema["properties"]["req"]["required"] == ["a"]
    box = schema["properties"]["box"]
    assert box["properties"]["size"] == {"type": "integer", "minimum": 0, "default": 0}
    # Node is used by the input (inside Box) and the output; recursion keeps it in $defs.
    assert schema["$defs"]["Node"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert sig.output is not None and sig.output.schema["type"] == "object"
    _, kwargs = sig.bind(
        {
            "box": {"node": {"value": 1, "children": [{"value": 2}]}, "size": 1},
            "opts": {},
            "req": {"a": 1},
        }
    )
    assert kwargs["box"] == future_module.Box(
        future_module.Node(1, [future_module.Node(2)]), size=1
    )
    assert kwargs["opts"] == {}
    assert kwargs["req"] == {"a": 1}


def test_unresolvable_annotation_is_a_clear_error(future_module: types.ModuleType) -> None:
    with pytest.raises(TypeError, match=r"cannot resolve the type hints of .*broken.*Missing"):
        signature_for(future_module.broken)


# --- bind ----------------------------------------------------------------------------------


def test_bind_converts_to_declared_types() -> None:
    def tool(
        a: int,
        b: float,
        color: Color,
        level: Level,
        where: Point,
        item: Item,
        opts: Options,
        pair: tuple[int, str],
        tags: set[str],
        frozen: frozenset[int],
        seq: Sequence[int],
        nested: dict[str, list[Point]],
        maybe: Point | None,
        either: int | str,
        shape: Circle | Square,
        label: Labelled,
        uid: UserId,
        anything: Any,
    ) -> None:
        pass

    _, kwargs = signature_for(tool).bind(
        {
            "a": 3.0,
            "b": 2,
            "color": "green",
            "level": 2,
            "where": {"x": 1},
            "item": {"name": "n", "where": {"x": 1, "y": 2}, "color": "red", "counts": [1]},
            "opts": {"verbose": True, "level": 1},
            "pair": [1, "x"],
            "tags": ["a", "b", "a"],
            "frozen": [1],
            "seq": [1, 2],
            "nested": {"k": [{"x": 5}]},
            "maybe": None,
            "either": "7",
            "shape": {"side": 2, "rounded": True},
            "label": {"label": "L", "tags": ["t"]},
            "uid": 9,
            "anything": {"raw": [1]},
        }
    )
    assert kwargs["a"] == 3 and type(kwargs["a"]) is int
    assert kwargs["b"] == 2.0 and type(kwargs["b"]) is float
    assert kwargs["color"] is Color.GREEN
    assert kwargs["level"] is Level.HIGH
    assert kwargs["where"] == Point(1, 0)
    assert kwargs["item"] == Item("n", Point(1, 2), Color.RED, None, [1])
    assert kwargs["opts"] == {"verbose": True, "level": Level.LOW}
    assert kwargs["pair"] == (1, "x")
    assert kwargs["tags"] == {"a", "b"}
    assert kwargs["frozen"] == frozenset({1}) and isinstance(kwargs["frozen"], frozenset)
    assert list(kwargs["seq"]) == [1, 2]
    assert kwargs["nested"] == {"k": [Point(5)]}
    assert kwargs["maybe"] is None
    assert kwargs["either"] == "7"
    assert kwargs["shape"] == Square(2.0, True)
    assert kwargs["label"] == Labelled("L", ("t",))
    assert kwargs["uid"] == 9
    assert kwargs["anything"] == {"raw": [1]}


def test_bind_union_prefers_the_matching_json_type() -> None:
    def tool(a: int | str, b: str | int, c: float | int, d: Circle | Square) -> None:
        pass

    sig = signature_for(tool)
    _, kwargs = sig.bind({"a": "5", "b": 5, "c": 2, "d": {"radius": 1}})
    assert kwargs == {"a": "5", "b": 5, "c": 2, "d": Circle(1.0)}
    assert type(kwargs["c"]) is int


def test_bind_positional_only_and_defaults() -> None:
    def tool(a: int, b: int = 2, /, c: int = 3, *, d: int = 4) -> None:
        pass

    sig = signature_for(tool)
    assert sig.bind({"a": 1}) == ([1, 2], {})
    assert sig.bind({"a": 1, "b": 5, "d": 6}) == ([1, 5], {"d": 6})


def test_bind_reports_missing_and_unconvertible_arguments() -> None:
    def tool(a: int, where: Point, shape: Circle | Square) -> None:
        pass

    sig = signature_for(tool)
    with pytest.raises(ValueError, match="missing required arguments: a, where"):
        sig.bind({"shape": {"radius": 1}})
    with pytest.raises(ValueError, match="argument 'where'"):
        sig.bind({"a": 1, "where": {"x": 1, "nope": 2}, "shape": {"radius": 1}})
    with pytest.raises(ValueError, match=r"argument 'shape'.*matches no type"):
        sig.bind({"a": 1, "where": {"x": 1}, "shape": {"radius": 1, "side": 2}})


def test_bind_ignores_unknown_keys_without_kwargs() -> None:
    def tool(a: int) -> None:
        pass

    assert signature_for(tool).bind({"a": 1, "zzz": 2}) == ([], {"a": 1})


# --- output ---------------------------------------------------------------------------------


def _output(annotation: Any, doc: str | None = None) -> OutputSpec | None:
    def tool() -> annotation:  # type: ignore[valid-type]
        pass

    tool.__doc__ = doc
    return signature_for(tool, content_types=CONTENT).output


@pytest.mark.parametrize(
    "annotation",
    [
        None,
        type(None),
        Any,
        str,
        Annotated[str, "text"],
        TextContent,
        CallToolResult,
        list[TextContent],
        list[TextContent | ImageContent],
        TextContent | ImageContent,
        Sequence[ImageContent | str],
        TextContent | None,
    ],
)
def test_no_output_schema(annotation: Any) -> None:
    assert _output(annotation) is None


def test_no_return_annotation_means_no_output_schema() -> None:
    def tool():  # type: ignore[no-untyped-def]
        pass

    assert signature_for(tool).output is None


@pytest.mark.parametrize(
    ("annotation", "inner"),
    [
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (list[str], {"type": "array", "items": {"type": "string"}}),
        (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (Color, {"type": "string", "enum": ["red", "green"]}),
        (
            dict[str, int] | None,
            {
                "anyOf": [
                    {"type": "object", "additionalProperties": {"type": "integer"}},
                    {"type": "null"},
                ]
            },
        ),
    ],
)
def test_wrapped_output(annotation: Any, inner: dict[str, Any]) -> None:
    spec = _output(annotation)
    assert spec is not None and spec.wrapped
    assert spec.schema == {
        "type": "object",
        "properties": {"result": inner},
        "required": ["result"],
    }


def test_object_outputs_are_not_wrapped() -> None:
    for annotation in (dict[str, int], dict, Mapping[str, Any], Point, Item, Options):
        spec = _output(annotation)
        assert spec is not None and not spec.wrapped, annotation
        assert spec.schema["type"] == "object"
        assert_valid_schema(spec.schema)


def test_recursive_output_root_is_an_object() -> None:
    spec = _output(Tree)
    assert spec is not None
    assert spec.schema["type"] == "object"
    assert spec.schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Tree"}
    assert spec.schema["$defs"]["Tree"]["type"] == "object"
    value = Tree(1, [Tree(2), Tree(3, [Tree(4)])])
    data = spec.to_structured(value)
    assert data == {
        "value": 1,
        "children": [
            {"value": 2, "children": []},
            {"value": 3, "children": [{"value": 4, "children": []}]},
        ],
    }
    assert compile_validator(spec.schema).is_valid(data)


def test_nested_forward_references_bind_and_unstructure() -> None:
    def tool(root: Folder) -> Folder:
        return root

    sig = signature_for(tool)
    data = {"name": "a", "folders": [{"name": "b", "folders": [{"name": "c"}]}]}
    _, kwargs = sig.bind({"root": data})
    assert kwargs["root"] == Folder("a", [Folder("b", [Folder("c")])])
    assert sig.output is not None
    assert sig.output.to_structured(kwargs["root"]) == {
        "name": "a",
        "folders": [{"name": "b", "folders": [{"name": "c", "folders": []}]}],
    }


def test_output_with_repeated_classes_in_wrapped_result() -> None:
    spec = _output(list[tuple[Point, Point]])
    assert spec is not None and spec.wrapped
    assert spec.schema["$defs"]["Point"]["type"] == "object"
    data = spec.to_structured([(Point(1), Point(2, 3))])
    assert data == {"result": [[{"x": 1, "y": 0}, {"x": 2, "y": 3}]]}
    assert compile_validator(spec.schema).is_valid(data)


def test_to_structured_unstructures() -> None:
    item = Item("n", Point(1, 2), Color.GREEN, counts=[3])
    spec = _output(Item)
    assert spec is not None
    assert spec.to_structured(item) == {
        "name": "n",
        "where": {"x": 1, "y": 2},
        "color": "green",
        "note": None,
        "counts": [3],
    }
    spec = _output(tuple[set[int], Level])
    assert spec is not None
    assert spec.to_structured(({1}, Level.HIGH)) == {"result": [[1], 2]}
    spec = _output(Options)
    assert spec is not None
    assert spec.to_structured({"verbose": False, "level": Level.LOW}) == {
        "verbose": False,
        "level": 1,
    }


def test_returns_docstring_describes_the_output() -> None:
    spec = _output(int, "Count.\n\nReturns:\n    How many there are.\n")
    assert spec is not None
    assert spec.schema["properties"]["result"]["description"] == "How many there are."


# --- prompts --------------------------------------------------------------------------------


def test_prompt_arguments() -> None:
    def prompt(
        ctx: Context,
        topic: str,
        tone: Annotated[str, "How it should sound."] = "neutral",
        length: Annotated[str, Field(description="Words.")] | None = None,
        *rest: str,
    ) -> str:
        """Write about a topic.

        Args:
            topic: What to write about.
            tone: Overridden by Annotated.
        """
        return ""

    assert prompt_arguments_for(prompt, injected=[Context]) == [
        PromptArgumentSpec("topic", "What to write about.", True),
        PromptArgumentSpec("tone", "How it should sound.", False),
        PromptArgumentSpec("length", "Words.", False),
    ]
    assert prompt_arguments_for(prompt, skip={"ctx", "topic"})[0].name == "tone"


# --- properties ---------------------------------------------------------------------------

ROUND_TRIP_TYPES: list[Any] = [
    int,
    str,
    bool,
    float,
    int | None,
    int | str,
    float | int,
    Literal["a", "b", 3],
    Color,
    Level,
    list[int],
    tuple[int, str],
    tuple[str, ...],
    set[str],
    frozenset[int],
    dict[str, int],
    Point,
    Labelled,
    Item,
    Options,
    Tree,
    Circle | Square,
    list[Point | None],
    dict[str, tuple[Color, Point]],
    Any,
]


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[Any, Any]:
    tp = draw(st.sampled_from(ROUND_TRIP_TYPES))
    if tp is Any:
        return tp, draw(st.from_type(int) | st.text() | st.lists(st.booleans()))
    if tp is Tree:
        leaves = st.builds(Tree, st.integers(), st.just([]))
        return tp, draw(
            st.recursive(
                leaves,
                lambda kids: st.builds(Tree, st.integers(), st.lists(kids, max_size=3)),
                max_leaves=6,
            )
        )
    return tp, draw(st.from_type(tp))


@settings(max_examples=300, deadline=None)
@given(typed_values())
def test_values_round_trip_through_schema_and_bind(case: tuple[Any, Any]) -> None:
    """A value of the declared type, unstructured, fits the schemas and binds back equal."""
    tp, value = case

    def tool(value: tp) -> tp:  # type: ignore[valid-type]
        return value

    sig = signature_for(tool)
    if sig.output is None:
        assert tp in (Any, str)  # returned as content, not structured
        inner = value
    else:
        data = sig.output.to_structured(value)
        inner = data["result"] if sig.output.wrapped else data
        assume(_is_plain_json(inner))  # NaN and infinity are not JSON
        assert compile_validator(sig.output.schema).errors(data) == []
    arguments = {"value": inner}
    assert compile_validator(sig.input_schema).errors(arguments) == []
    _, kwargs = sig.bind(arguments)
    assert kwargs["value"] == value


@pytest.mark.parametrize("tp", ROUND_TRIP_TYPES)
def test_generated_schemas_are_valid_2020_12(tp: Any) -> None:
    def tool(value: tp) -> tp:  # type: ignore[valid-type]
        return value

    sig = signature_for(tool)
    assert check_schema(sig.input_schema, require_object_root=True) == []
    if sig.output is not None:
        assert check_schema(sig.output.schema, require_object_root=True) == []


def test_evolved_signature_keeps_binding() -> None:
    # The server replaces schemas with attrs.evolve when given explicit ones.
    def tool(a: int, /, b: Color = Color.RED, **extra: Any) -> int:
        return a

    sig = attrs.evolve(signature_for(tool), input_schema={"type": "object"}, output=None)
    assert sig.bind({"a": 1.0, "b": "green", "z": 1}) == ([1], {"b": Color.GREEN, "z": 1})


def test_tool_signature_is_immutable() -> None:
    def tool(a: int) -> None:
        pass

    sig = signature_for(tool)
    assert isinstance(sig, ToolSignature)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        sig.description = "x"  # type: ignore[misc]
