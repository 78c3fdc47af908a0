"""JSON Schema from Python type hints, and JSON arguments back into those types.

``signature_for(fn)`` reads a tool function's signature, type hints and docstring and gives
its ``inputSchema``, its description, an ``outputSchema`` from the return annotation, and
``bind`` to turn validated JSON arguments into the Python values the function declares
(enum members, attrs/dataclass/TypedDict instances, tuples, sets ...).

User classes are (un)structured by a private cattrs converter that keeps their own field
names (the ``__init__`` argument names), unlike the MCP wire converter. Sans-IO: no trio.
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import enum
import functools
import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, Literal, NamedTuple, NotRequired, Required, Union

import attrs
import cattrs

from .docstrings import Docstring, parse_docstring

__all__ = [
    "Field",
    "OutputSpec",
    "PromptArgumentSpec",
    "ToolSignature",
    "prompt_arguments_for",
    "signature_for",
]

_NoneType = type(None)
_ALL_KINDS = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})
_SEQUENCE_ORIGINS = frozenset(
    {list, collections.abc.Sequence, collections.abc.MutableSequence, collections.abc.Collection}
)
_SET_ORIGINS = frozenset({set, frozenset, collections.abc.Set, collections.abc.MutableSet})
_MAPPING_ORIGINS = frozenset({dict, collections.abc.Mapping, collections.abc.MutableMapping})


def _examples(value: Collection[Any] | None) -> tuple[Any, ...] | None:
    if isinstance(value, str | bytes | Mapping):
        raise TypeError(f"Field(examples=...) takes a list of examples, not {value!r}")
    return None if value is None else tuple(value)


def _check_pattern(instance: Field, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"Field(pattern={value!r}) is not a valid regex: {exc}") from None


_optional_non_negative = attrs.validators.optional(attrs.validators.ge(0))


@attrs.frozen
class Field:
    """JSON Schema details for one parameter or class field: ``Annotated[int, Field(ge=0)]``.

    ``ge``/``gt``/``le``/``lt`` bound numbers; ``min_length``/``max_length`` bound the
    length of a string, array or object; ``pattern`` is a regex strings must match;
    ``extra`` adds any other JSON Schema keywords verbatim.
    """

    description: str | None = None
    title: str | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_length: int | None = attrs.field(default=None, validator=_optional_non_negative)
    max_length: int | None = attrs.field(default=None, validator=_optional_non_negative)
    pattern: str | None = attrs.field(default=None, validator=_check_pattern)
    examples: tuple[Any, ...] | None = attrs.field(default=None, converter=_examples)
    extra: Mapping[str, Any] | None = attrs.field(default=None, hash=False)


class PromptArgumentSpec(NamedTuple):
    """One prompt argument: its name, description and whether it is required."""

    name: str
    description: str | None
    required: bool


class _Unsupported(TypeError):
    """A type with no JSON Schema; ``where`` says how it was reached (inner first)."""

    def __init__(self, tp: Any, reason: str = "") -> None:
        super().__init__()
        self.tp = tp
        self.reason = reason
        self.where: list[str] = []

    def describe(self) -> str:
        text = f"unsupported type {_type_name(self.tp)}"
        if self.reason:
            text += f" ({self.reason})"
        if self.where:
            text += " in " + " of ".join(self.where)
        return text

    def __str__(self) -> str:
        return self.describe()


# --- type inspection --------------------------------------------------------------------


def _unwrap(tp: Any) -> tuple[Any, list[Any]]:
    """Strip ``Annotated``, ``NewType``, ``Required``/``NotRequired`` and type aliases."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            metadata.extend(tp.__metadata__)
            tp = tp.__origin__
        elif origin in (Required, NotRequired):
            tp = typing.get_args(tp)[0]
        elif isinstance(tp, typing.NewType):
            tp = tp.__supertype__
        elif type(tp).__name__ == "TypeAliasType" and hasattr(tp, "__value__"):
            tp = tp.__value__
        else:
            return tp, metadata


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _is_class_type(tp: Any) -> bool:
    return isinstance(tp, type) and (
        attrs.has(tp) or dataclasses.is_dataclass(tp) or typing.is_typeddict(tp)
    )


def _is_object_type(tp: Any) -> bool:
    base, _ = _unwrap(tp)
    return base is dict or typing.get_origin(base) in _MAPPING_ORIGINS or _is_class_type(base)


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__qualname__
    return repr(tp).replace("typing.", "")


def _literal_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    raise _Unsupported(type(value), f"value {value!r} is not a JSON string, number or boolean")


def _json_kinds(tp: Any) -> frozenset[str]:
    """The JSON types whose values can become an instance of ``tp``."""
    base, _ = _unwrap(tp)
    if base is _NoneType or base is None:
        return frozenset({"null"})
    if base is bool:
        return frozenset({"boolean"})
    if base is int:
        return frozenset({"integer"})
    if base is float:
        return frozenset({"number"})
    if base is str:
        return frozenset({"string"})
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return frozenset(_literal_kind(member.value) for member in base)
    origin = typing.get_origin(base)
    if origin is Literal:
        return frozenset(_literal_kind(_literal_value(v)) for v in typing.get_args(base))
    if _is_union(base):
        return frozenset().union(*(_json_kinds(arg) for arg in typing.get_args(base)))
    container = origin or base
    if container in _SEQUENCE_ORIGINS or container in _SET_ORIGINS or container is tuple:
        return frozenset({"array"})
    if container in _MAPPING_ORIGINS or _is_class_type(base):
        return frozenset({"object"})
    return _ALL_KINDS


def _value_kinds(value: Any) -> tuple[str, ...]:
    """JSON kinds of a decoded JSON value, most specific first."""
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("boolean",)
    # An integer also fits a float; 3.0 also fits an int (JSON Schema calls it an integer).
    if isinstance(value, int):
        return ("integer", "number")
    if isinstance(value, float):
        return ("number", "integer") if value.is_integer() else ("number",)
    if isinstance(value, str):
        return ("string",)
    if isinstance(value, list | tuple):
        return ("array",)
    if isinstance(value, dict):
        return ("object",)
    return tuple(_ALL_KINDS)


def _literal_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _resolve_hints(owner: Any, where: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(owner, include_extras=True)
    except NameError as exc:
        raise TypeError(
            f"cannot resolve the type hints of {where}: {exc}. Types named in annotations "
            "must be importable from the module that defines them (not local to a function)"
        ) from None


# --- the private converter ----------------------------------------------------------------


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(
        forbid_extra_keys=True,
        use_alias=True,
        unstruct_collection_overrides={
            collections.abc.Set: list,
            collections.abc.Sequence: list,
            tuple: list,
        },
    )

    def structure_union(value: Any, tp: Any) -> Any:
        branches = typing.get_args(tp)
        if value is None and _NoneType in branches:
            return None
        failures: list[str] = []
        tried: set[int] = set()
        # Try the branches whose JSON type fits the value, most specific first, so that
        # 3 becomes an int for ``int | float`` and never the string "3" for ``int | str``.
        for kind in _value_kinds(value):
            for index, branch in enumerate(branches):
                if index in tried or kind not in _json_kinds(branch):
                    continue
                tried.add(index)
                try:
                    return converter.structure(value, branch)
                except Exception as exc:
                    failures.append(f"{_type_name(branch)}: {_error_text(exc)}")
        detail = "; ".join(failures) or "no branch accepts this JSON type"
        raise ValueError(f"{value!r} matches no type of {_type_name(tp)} ({detail})")

    def typeddict_hooks(cls: Any) -> tuple[Callable[[Any, Any], Any], Callable[[Any], Any]]:
        @functools.cache
        def fields() -> tuple[dict[str, Any], frozenset[str]]:
            # Resolved on first use, so a recursive TypedDict can refer to itself.
            hints = _resolve_hints(cls, f"TypedDict {cls.__qualname__}")
            return hints, _typeddict_required(cls, hints)

        def structure(value: Any, _: Any) -> Any:
            hints, required = fields()
            if not isinstance(value, Mapping):
                raise ValueError(f"expected an object for {cls.__qualname__}, got {value!r}")
            missing = required - value.keys()
            if missing:
                raise ValueError(f"missing keys {sorted(missing)} for {cls.__qualname__}")
            extra = value.keys() - hints.keys()
            if extra:
                raise ValueError(f"unexpected keys {sorted(extra)} for {cls.__qualname__}")
            return {k: converter.structure(v, _unwrap(hints[k])[0]) for k, v in value.items()}

        def unstructure(value: Any) -> Any:
            hints, _ = fields()
            return {
                k: converter.unstructure(v, _unwrap(hints[k])[0] if k in hints else Any)
                for k, v in value.items()
            }

        return structure, unstructure

    converter.register_structure_hook_func(_is_union, structure_union)
    converter.register_structure_hook_factory(
        typing.is_typeddict, lambda cls: typeddict_hooks(cls)[0]
    )
    converter.register_unstructure_hook_factory(
        typing.is_typeddict, lambda cls: typeddict_hooks(cls)[1]
    )
    return converter


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return str(exc)


_CONVERTER = _make_converter()


def _json_value(value: Any) -> tuple[bool, Any]:
    """``(True, json)`` when ``value`` (a default) has a plain JSON form, else ``(False, None)``."""
    try:
        data = _CONVERTER.unstructure(value)
    except Exception:
        return False, None
    return (True, data) if _is_plain_json(data) else (False, None)


def _is_plain_json(data: Any) -> bool:
    if data is None or isinstance(data, str | bool | int):
        return True
    if isinstance(data, float):
        return math.isfinite(data)
    if isinstance(data, list):
        return all(_is_plain_json(item) for item in data)
    if isinstance(data, dict):
        return all(isinstance(k, str) and _is_plain_json(v) for k, v in data.items())
    return False


# --- schema building ----------------------------------------------------------------------


_NO_DEFAULT: Any = object()  # a field with no JSON default to show


@attrs.define
class _ClassField:
    key: str
    tp: Any
    required: bool
    default: Any = _NO_DEFAULT
    description: str | None = None


class _Builder:
    """Builds schemas for one root (a tool's input or output), collecting ``$defs``."""

    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}
        self._names: dict[Any, str] = {}

    def schema(self, tp: Any) -> dict[str, Any]:
        base, metadata = _unwrap(tp)
        out = self._schema_for(base)
        if metadata:
            _apply_metadata(out, metadata, base)
        return out

    def _schema_for(self, tp: Any) -> dict[str, Any]:
        if tp is Any or tp is object:
            return {}
        if tp is None or tp is _NoneType:
            return {"type": "null"}
        if tp is str:
            return {"type": "string"}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is float:
            return {"type": "number"}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum_schema([member.value for member in tp])
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if _is_union(tp):
            branches = [self._nested(arg, tp) for arg in args if arg is not _NoneType]
            if _NoneType in args:
                branches.append({"type": "null"})
            return branches[0] if len(branches) == 1 else {"anyOf": branches}
        if origin is Literal:
            return _enum_schema([_literal_value(arg) for arg in args])
        if tp in _SEQUENCE_ORIGINS or tp is tuple:
            return {"type": "array"}
        if origin in _SEQUENCE_ORIGINS:
            return {"type": "array", "items": self._nested(args[0], tp)}
        if tp in _SET_ORIGINS:
            return {"type": "array", "uniqueItems": True}
        if origin in _SET_ORIGINS:
            return {"type": "array", "items": self._nested(args[0], tp), "uniqueItems": True}
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": self._nested(args[0], tp)}
            if args == ((),):  # typing.Tuple[()]
                args = ()
            out: dict[str, Any] = {"type": "array"}
            if args:
                out["prefixItems"] = [self._nested(arg, tp) for arg in args]
            out["minItems"] = out["maxItems"] = len(args)
            return out
        if tp in _MAPPING_ORIGINS:
            return {"type": "object"}
        if origin in _MAPPING_ORIGINS:
            key, value = args
            if _unwrap(key)[0] not in (str, Any):
                raise _Unsupported(tp, "JSON object keys are strings; use str keys")
            value_schema = self._nested(value, tp)
            if not value_schema:
                return {"type": "object"}
            return {"type": "object", "additionalProperties": value_schema}
        if _is_class_type(tp):
            return self._class_ref(tp)
        if origin is not None and _is_class_type(origin):
            raise _Unsupported(tp, "generic classes are not supported")
        raise _Unsupported(tp)

    def _nested(self, tp: Any, parent: Any) -> dict[str, Any]:
        try:
            return self.schema(tp)
        except _Unsupported as exc:
            exc.where.append(_type_name(parent))
            raise

    def _class_ref(self, cls: type) -> dict[str, Any]:
        name = self._names.get(cls)
        if name is None:
            name = cls.__name__
            suffix = 1
            while name in self.defs:
                suffix += 1
                name = f"{cls.__name__}{suffix}"
            self._names[cls] = name
            self.defs[name] = {}  # reserve the name first: a recursive class refers to it
            self.defs[name] = self._class_schema(cls)
        return {"$ref": f"#/$defs/{name}"}

    def _class_schema(self, cls: type) -> dict[str, Any]:
        doc = parse_docstring(_own_doc(cls))
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in _class_fields(cls, doc):
            try:
                schema = self.schema(field.tp)
            except _Unsupported as exc:
                exc.where.append(f"field {field.key!r} of class {cls.__qualname__}")
                raise
            if field.description and "description" not in schema:
                schema["description"] = field.description
            if field.default is not _NO_DEFAULT:
                schema["default"] = field.default
            properties[field.key] = schema
            if field.required:
                required.append(field.key)
        out: dict[str, Any] = {"type": "object"}
        if doc.summary:
            out["description"] = doc.summary
        out["properties"] = properties
        if required:
            out["required"] = required
        out["additionalProperties"] = False
        return out


def _own_doc(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    # dataclasses invent "Name(field: type, ...)" when a class has no docstring.
    if not doc or (dataclasses.is_dataclass(cls) and doc.startswith(f"{cls.__name__}(")):
        return None
    return str(doc)


def _class_fields(cls: type, doc: Docstring) -> Iterator[_ClassField]:
    hints = _resolve_hints(cls, f"class {cls.__qualname__}")
    if attrs.has(cls):
        # cattrs reads attrs field types; string annotations ("list[Tree]") must be
        # resolved on the class or nested values are not (un)structured.
        attrs.resolve_types(cls)
        for a in attrs.fields(cls):
            if not a.init:
                continue
            key = a.alias or a.name
            field = _ClassField(key, hints.get(a.name, a.type or Any), required=True)
            if a.default is not attrs.NOTHING:
                field.required = False
                if not isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
                    ok, value = _json_value(a.default)
                    if ok:
                        field.default = value
            field.description = (
                a.metadata.get("description") or doc.params.get(a.name) or doc.params.get(key)
            )
            yield field
    elif dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            # As attrs.resolve_types does for attrs classes: cattrs resolves whole-string
            # annotations itself but not nested forward references such as list["Node"].
            if f.name in hints:
                f.type = hints[f.name]
            if not f.init:
                continue
            field = _ClassField(f.name, hints.get(f.name, Any), required=True)
            if f.default is not dataclasses.MISSING:
                field.required = False
                ok, value = _json_value(f.default)
                if ok:
                    field.default = value
            elif f.default_factory is not dataclasses.MISSING:
                field.required = False
            field.description = f.metadata.get("description") or doc.params.get(f.name)
            yield field
    else:  # TypedDict
        required_keys = _typeddict_required(cls, hints)
        for key, tp in hints.items():
            yield _ClassField(key, tp, key in required_keys, description=doc.params.get(key))


def _typeddict_required(cls: type, hints: Mapping[str, Any]) -> frozenset[str]:
    # Python 3.11 fills __required_keys__ before string annotations are evaluated, so a
    # NotRequired[...] written under "from __future__ import annotations" counts as
    # required there; the resolved hints say what was meant.
    declared: frozenset[str] = getattr(cls, "__required_keys__", frozenset())
    out = set()
    for key, hint in hints.items():
        origin = typing.get_origin(hint)
        if origin is Required or (origin is not NotRequired and key in declared):
            out.add(key)
    return frozenset(out)


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    kinds = {_literal_kind(value) for value in values}
    out: dict[str, Any] = {}
    if len(kinds) == 1:
        out["type"] = kinds.pop()
    if len(values) == 1:
        out["const"] = values[0]
    else:
        out["enum"] = values
    return out


def _apply_metadata(schema: dict[str, Any], metadata: list[Any], base: Any) -> None:
    for item in metadata:
        if isinstance(item, str):
            schema["description"] = item
        elif isinstance(item, Field):
            _apply_field(schema, item, base)


def _apply_field(schema: dict[str, Any], field: Field, base: Any) -> None:
    if field.title is not None:
        schema["title"] = field.title
    if field.description is not None:
        schema["description"] = field.description
    for value, keyword in (
        (field.ge, "minimum"),
        (field.gt, "exclusiveMinimum"),
        (field.le, "maximum"),
        (field.lt, "exclusiveMaximum"),
    ):
        if value is not None:
            schema[keyword] = value
    if field.min_length is not None or field.max_length is not None:
        # The same words bound strings, arrays and objects; use the keywords of each kind
        # the type allows (each keyword ignores values of other kinds).
        kinds = _json_kinds(base)
        names = [
            suffix
            for kind, suffix in (("string", "Length"), ("array", "Items"), ("object", "Properties"))
            if kind in kinds
        ] or ["Length"]
        for suffix in names:
            if field.min_length is not None:
                schema[f"min{suffix}"] = field.min_length
            if field.max_length is not None:
                schema[f"max{suffix}"] = field.max_length
    if field.pattern is not None:
        schema["pattern"] = field.pattern
    if field.examples is not None:
        schema["examples"] = list(field.examples)
    if field.extra:
        schema.update(field.extra)


_REF_PREFIX = "#/$defs/"


def _finalize(root: dict[str, Any], defs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Inline each class referenced once; keep the rest under ``$defs``."""
    if not defs:
        return root
    if "$ref" in root:
        # An output schema's root must be the object itself, never a reference.
        name = root["$ref"][len(_REF_PREFIX) :]
        root = {**copy.deepcopy(defs[name]), **{k: v for k, v in root.items() if k != "$ref"}}
    counts: dict[str, int] = {}
    reachable: list[str] = []
    pending = list(_refs_in(root))
    for name in pending:
        counts[name] = counts.get(name, 0) + 1
        if name not in reachable:
            reachable.append(name)
            pending.extend(_refs_in(defs[name]))
    # A class on a reference cycle is referenced from inside the cycle and from where the
    # cycle is entered, so at least one class of every cycle stays in $defs.
    inline = {name for name in reachable if counts[name] == 1}

    def substitute(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref[len(_REF_PREFIX) :] in inline:
                body = substitute(defs[ref[len(_REF_PREFIX) :]])
                return {**body, **{k: substitute(v) for k, v in node.items() if k != "$ref"}}
            return {k: substitute(v) for k, v in node.items()}
        if isinstance(node, list):
            return [substitute(item) for item in node]
        return node

    out: dict[str, Any] = substitute(root)
    kept = {name: substitute(defs[name]) for name in reachable if name not in inline}
    if kept:
        out["$defs"] = kept
    return out


def _refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            yield ref[len(_REF_PREFIX) :]
        for key, value in node.items():
            if key not in ("default", "examples", "const", "enum"):
                yield from _refs_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs_in(item)


# --- output -------------------------------------------------------------------------------


@attrs.frozen
class OutputSpec:
    """A tool's ``outputSchema`` and how to turn a return value into ``structuredContent``.

    ``wrapped`` is true when the return type is not a JSON object: the schema is then
    ``{"type": "object", "properties": {"result": ...}, "required": ["result"]}`` and
    :meth:`to_structured` returns ``{"result": value}``.
    """

    schema: dict[str, Any]
    wrapped: bool
    annotation: Any = attrs.field(default=Any, repr=False)

    def to_structured(self, value: Any) -> Any:
        """The JSON form of ``value`` (attrs, dataclass, enum, tuple, set ... unstructured)."""
        data = _CONVERTER.unstructure(value, _unwrap(self.annotation)[0])
        return {"result": data} if self.wrapped else data


def _is_content(tp: Any, content_types: tuple[type, ...]) -> bool:
    """Whether ``tp`` only ever holds content blocks (and text): the server renders those."""
    leaves = list(_content_leaves(tp))
    return any(leaf in content_types or _subclass(leaf, content_types) for leaf in leaves) and all(
        leaf in (str, _NoneType) or _subclass(leaf, content_types) for leaf in leaves
    )


def _content_leaves(tp: Any) -> Iterator[Any]:
    base, _ = _unwrap(tp)
    origin = typing.get_origin(base)
    if _is_union(base):
        for arg in typing.get_args(base):
            yield from _content_leaves(arg)
    elif (origin in _SEQUENCE_ORIGINS or origin is tuple) and typing.get_args(base):
        for arg in typing.get_args(base):
            if arg is not Ellipsis:
                yield from _content_leaves(arg)
    else:
        yield base


def _subclass(tp: Any, classes: tuple[type, ...]) -> bool:
    return bool(classes) and isinstance(tp, type) and issubclass(tp, classes)


def _output_spec(
    annotation: Any, returns_doc: str | None, content_types: tuple[type, ...]
) -> OutputSpec | None:
    base, _ = _unwrap(annotation)
    if base in (inspect.Signature.empty, None, _NoneType, Any, object, str):
        return None
    if _is_content(annotation, content_types):
        return None
    builder = _Builder()
    schema = builder.schema(annotation)
    if _is_object_type(annotation):
        root = _finalize(schema, builder.defs)
        if returns_doc and "description" not in root:
            root["description"] = returns_doc
        return OutputSpec(root, wrapped=False, annotation=annotation)
    if returns_doc and "description" not in schema:
        schema["description"] = returns_doc
    wrapper = {"type": "object", "properties": {"result": schema}, "required": ["result"]}
    return OutputSpec(_finalize(wrapper, builder.defs), wrapped=True, annotation=annotation)


# --- signatures -----------------------------------------------------------------------------


@attrs.frozen
class _Param:
    name: str
    positional_only: bool
    required: bool
    default: Any
    convert: Callable[[Any], Any]


@attrs.frozen
class ToolSignature:
    """What a tool function looks like on the wire; build it with :func:`signature_for`.

    ``injected`` maps the parameters left out of the schema because their annotation is
    an injected type (such as a request context) to that type; the caller passes those
    itself, by keyword.
    """

    input_schema: dict[str, Any]
    description: str | None
    output: OutputSpec | None
    injected: Mapping[str, type] = attrs.field(factory=dict)
    _params: tuple[_Param, ...] = attrs.field(default=(), repr=False, alias="params")
    _accepts_extra: bool = attrs.field(default=False, repr=False, alias="accepts_extra")
    _reserved: frozenset[str] = attrs.field(default=frozenset(), repr=False, alias="reserved")

    def bind(self, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """``(args, kwargs)`` for the function from validated JSON ``arguments``.

        Values become the declared Python types. Parameters missing from ``arguments``
        keep their defaults. Raises :class:`ValueError` naming the argument when a value
        cannot be converted or a required one is missing.
        """
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        missing: list[str] = []
        for param in self._params:
            if param.name in arguments:
                try:
                    value = param.convert(arguments[param.name])
                except Exception as exc:
                    raise ValueError(f"argument {param.name!r}: {_error_text(exc)}") from exc
            elif param.required:
                missing.append(param.name)
                continue
            elif param.positional_only:
                value = param.default  # a later positional-only argument may follow
            else:
                continue
            if param.positional_only:
                args.append(value)
            else:
                kwargs[param.name] = value
        if missing:
            raise ValueError(f"missing required arguments: {', '.join(missing)}")
        if self._accepts_extra:
            known = {param.name for param in self._params}
            for key, value in arguments.items():
                if key not in known and key not in self._reserved:
                    kwargs[key] = value
        return args, kwargs


def _converter_for(tp: Any) -> Callable[[Any], Any]:
    base, _ = _unwrap(tp)
    if base in (Any, object, str, bool, _NoneType, inspect.Parameter.empty):
        return _identity
    if base is int:
        return _to_int
    if base is float:
        return _to_float
    return functools.partial(_CONVERTER.structure, cl=base)


def _identity(value: Any) -> Any:
    return value


def _to_int(value: Any) -> Any:
    # JSON Schema counts 3.0 as an integer; the function wants 3.
    return int(value) if isinstance(value, float) else value


def _to_float(value: Any) -> Any:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _describe(fn: Any) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"function {name}"


def _annotation_owner(fn: Any) -> Any:
    target = fn
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.ismethod(target):
        target = target.__func__
    elif isinstance(target, type):
        target = vars(target).get("__init__", target)
    elif not inspect.isfunction(target) and callable(target):
        target = type(target).__call__
    return inspect.unwrap(target)


def _is_injected(annotation: Any, injected: tuple[type, ...]) -> type | None:
    base, _ = _unwrap(annotation)
    for candidate in injected:
        if base is candidate or (isinstance(base, type) and issubclass(base, candidate)):
            return candidate
    return None


def _signature_parts(
    fn: Callable[..., Any], skip: Collection[str], injected: Collection[type]
) -> tuple[
    str,
    inspect.Signature,
    dict[str, Any],
    Docstring,
    dict[str, type],
    bool,
]:
    where = _describe(fn)
    if not callable(fn):
        raise TypeError(f"{fn!r} is not callable")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot read the signature of {where}: {exc}") from None
    owner = _annotation_owner(fn)
    hints = _resolve_hints(owner, where)
    doc = parse_docstring(inspect.getdoc(owner))
    injected_types = tuple(injected)
    injected_params: dict[str, type] = {}
    accepts_extra = False
    for param in sig.parameters.values():
        annotation = hints.get(param.name, param.annotation)
        hit = _is_injected(annotation, injected_types) if injected_types else None
        if hit is not None:
            injected_params[param.name] = hit
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_extra = True
        elif (hit is not None or param.name in skip) and (
            param.kind is inspect.Parameter.POSITIONAL_ONLY
        ):
            raise TypeError(
                f"parameter {param.name!r} of {where} is filled in by the server, so it "
                "cannot be positional-only; remove the '/' before it"
            )
    return where, sig, hints, doc, injected_params, accepts_extra


def signature_for(
    fn: Callable[..., Any],
    *,
    skip: Collection[str] = (),
    injected: Collection[type] = (),
    content_types: Collection[type] = (),
) -> ToolSignature:
    """Describe tool function ``fn`` (sync or async): input schema, description, output.

    Parameters named in ``skip``, ``*args``/``**kwargs``, and parameters annotated with
    one of the ``injected`` types (or a subclass) are not part of the schema. A return
    annotation of ``str``, ``None``, ``Any``, or of ``content_types`` (alone, in a union
    or in a list) gives no output schema: the caller renders those as content.

    Raises :class:`TypeError` naming the function and parameter when an annotation has
    no JSON Schema form.
    """
    where, sig, hints, doc, injected_params, accepts_extra = _signature_parts(fn, skip, injected)
    builder = _Builder()
    properties: dict[str, Any] = {}
    required: list[str] = []
    params: list[_Param] = []
    for param in sig.parameters.values():
        if (
            param.name in skip
            or param.name in injected_params
            or param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ):
            continue
        annotation = hints.get(param.name, Any)
        if annotation is inspect.Parameter.empty:
            annotation = Any
        try:
            schema = builder.schema(annotation)
        except _Unsupported as exc:
            raise TypeError(
                f"parameter {param.name!r} of {where}: {exc.describe()}; use str, int, "
                "float, bool, None, Literal, Enum, list, tuple, set, dict[str, ...], "
                "attrs classes, dataclasses or TypedDicts"
            ) from None
        description = doc.params.get(param.name)
        if description and "description" not in schema:
            schema["description"] = description
        has_default = param.default is not inspect.Parameter.empty
        if has_default:
            ok, value = _json_value(param.default)
            if ok:
                schema["default"] = value
        else:
            required.append(param.name)
        properties[param.name] = schema
        params.append(
            _Param(
                name=param.name,
                positional_only=param.kind is inspect.Parameter.POSITIONAL_ONLY,
                required=not has_default,
                default=param.default,
                convert=_converter_for(annotation),
            )
        )
    root: dict[str, Any] = {"type": "object"}
    if properties:
        root["properties"] = properties
    if required:
        root["required"] = required
    if not accepts_extra:
        root["additionalProperties"] = False
    input_schema = _finalize(root, builder.defs)
    try:
        output = _output_spec(
            hints.get("return", inspect.Signature.empty), doc.returns, tuple(content_types)
        )
    except _Unsupported as exc:
        raise TypeError(f"return type of {where}: {exc.describe()}") from None
    return ToolSignature(
        input_schema=input_schema,
        description=doc.summary,
        output=output,
        injected=injected_params,
        params=tuple(params),
        accepts_extra=accepts_extra,
        reserved=frozenset(skip) | frozenset(injected_params),
    )


def _metadata(annotation: Any) -> list[Any]:
    """``Annotated`` metadata of ``annotation``, also when it is wrapped in ``X | None``."""
    base, metadata = _unwrap(annotation)
    if _is_union(base):
        branches = [arg for arg in typing.get_args(base) if arg is not _NoneType]
        if len(branches) == 1:
            metadata += _unwrap(branches[0])[1]
    return metadata


def prompt_arguments_for(
    fn: Callable[..., Any], *, skip: Collection[str] = (), injected: Collection[type] = ()
) -> list[PromptArgumentSpec]:
    """The arguments of prompt function ``fn``: name, description, required (no default).

    Descriptions come from ``Annotated[str, "..."]`` or ``Field(description=...)``, else
    from the docstring. ``skip``, ``injected``, ``*args`` and ``**kwargs`` work as in
    :func:`signature_for`.
    """
    _, sig, hints, doc, injected_params, _ = _signature_parts(fn, skip, injected)
    out: list[PromptArgumentSpec] = []
    for param in sig.parameters.values():
        if (
            param.name in skip
            or param.name in injected_params
            or param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ):
            continue
        description = doc.params.get(param.name)
        for item in _metadata(hints.get(param.name, Any)):
            if isinstance(item, str):
                description = item
            elif isinstance(item, Field) and item.description is not None:
                description = item.description
        required = param.default is inspect.Parameter.empty
        out.append(PromptArgumentSpec(param.name, description, required))
    return out
