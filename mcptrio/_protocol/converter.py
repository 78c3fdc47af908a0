"""The cattrs converter between :mod:`mcptrio.types` objects and wire JSON (sans-IO).

Wire names are derived from the snake_case field names (``mime_type`` -> ``mimeType``,
``meta`` -> ``_meta``; a field's ``metadata={"wire_name": ...}`` overrides that). Output
leaves out fields whose value is None when their default is None; required fields and
discriminators (``type``, ``mode``, ``method``) are always written. Input ignores unknown
members, checks every JSON type strictly, and reports the first problems with their field
paths as :class:`~mcptrio._protocol.errors.InvalidParams`.

Two converters share one configuration: a fast one for the normal path, and one with
cattrs' detailed validation that only runs after the fast one failed, to say where.
"""

from __future__ import annotations

import base64
import binascii
import functools
import operator
import re
from collections.abc import Callable
from types import NoneType, UnionType
from typing import Any, Literal, TypeVar, Union, cast, get_args, get_origin, overload

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.fns import identity
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .. import types as t
from .errors import InvalidParams

__all__ = [
    "content_from_wire",
    "from_wire",
    "result_from_wire",
    "to_wire",
    "wire_name",
]

T = TypeVar("T")

# --- errors ------------------------------------------------------------------------------

_PathPart = str | int


class _WireError(Exception):
    """A problem found by one of our hooks, with its path below the hook's own value."""

    def __init__(self, problem: str, path: tuple[_PathPart, ...] = ()) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path


def _show(value: Any) -> str:
    """A short description of a JSON value for error messages."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "...'"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _alternatives(values: list[str]) -> str:
    quoted = [repr(v) for v in values]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def _format_path(parts: tuple[_PathPart, ...], prefix: str) -> str:
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def _collect(exc: BaseException, path: tuple[_PathPart, ...], out: list[str], prefix: str) -> None:
    if isinstance(exc, BaseExceptionGroup):
        owner = getattr(exc, "cl", None)
        for sub in exc.exceptions:
            _collect(sub, path + _note_path(sub, owner), out, prefix)
        return
    if isinstance(exc, _WireError):
        where, problem = path + exc.path, exc.problem
    elif isinstance(exc, KeyError):
        where, problem = path, "required field missing"
    else:
        where, problem = path, str(exc) or type(exc).__name__
    location = _format_path(where, prefix)
    out.append(f"{location}: {problem}" if location else problem)


def _note_path(exc: BaseException, owner: Any) -> tuple[_PathPart, ...]:
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, AttributeValidationNote):
            return (_attr_wire_name(owner, note.name),)
        if isinstance(note, IterableValidationNote):
            return (note.index,)
    return ()


def _attr_wire_name(cls: Any, name: str) -> str:
    if attrs.has(cls):
        for field in attrs.fields(cls):
            if field.name == name:
                return _field_wire_name(field)
    return name


# --- wire names --------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _field_wire_name(field: attrs.Attribute[Any]) -> str:
    explicit = field.metadata.get("wire_name")
    if explicit is not None:
        return str(explicit)
    if field.name == "meta":
        return "_meta"
    return _camel(field.name)


def wire_name(cls: type, field_name: str) -> str:
    """The JSON member name of a field of ``cls`` (``mime_type`` -> ``mimeType``)."""
    for field in attrs.fields(cls):
        if field.name == field_name:
            return _field_wire_name(field)
    raise AttributeError(f"{cls.__name__} has no field {field_name!r}")


# --- primitive hooks ---------------------------------------------------------------------


def _structure_str(value: Any, _: Any) -> str:
    if type(value) is str:
        return value
    raise _WireError(f"expected a string, got {_show(value)}")


def _structure_int(value: Any, _: Any) -> int:
    if type(value) is int:
        return value
    raise _WireError(f"expected an integer, got {_show(value)}")


def _structure_float(value: Any, _: Any) -> float:
    # Ints stay ints so that 1 is written back as 1, not 1.0.
    if type(value) is float or type(value) is int:
        return cast(float, value)
    raise _WireError(f"expected a number, got {_show(value)}")


def _structure_bool(value: Any, _: Any) -> bool:
    if type(value) is bool:
        return value
    raise _WireError(f"expected true or false, got {_show(value)}")


def _structure_bytes(value: Any, _: Any) -> bytes:
    if type(value) is not str:
        raise _WireError(f"expected a base64 string, got {_show(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _WireError("expected standard base64 data") from None


def _unstructure_bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _structure_any(value: Any, _: Any) -> Any:
    return value


def _structure_request_id(value: Any, _: Any) -> int | str:
    if type(value) is int or type(value) is str:
        return value
    raise _WireError(f"expected a string or an integer, got {_show(value)}")


# --- predicates on type forms ------------------------------------------------------------


def _union_args(tp: Any) -> tuple[Any, ...]:
    if isinstance(tp, UnionType) or get_origin(tp) is Union:
        return get_args(tp)
    return ()


def _is_any(tp: Any) -> bool:
    return tp is Any


def _is_literal(tp: Any) -> bool:
    return get_origin(tp) is Literal


def _is_request_id(tp: Any) -> bool:
    args = _union_args(tp)
    return len(args) == 2 and set(args) == {int, str}


def _is_optional(tp: Any) -> bool:
    args = _union_args(tp)
    return NoneType in args and len(args) >= 2


def _is_one_or_many(tp: Any) -> bool:
    args = _union_args(tp)
    if len(args) < 2 or get_origin(args[-1]) is not list:
        return False
    item = get_args(args[-1])[0]
    return frozenset(args[:-1]) == frozenset(_union_args(item) or (item,))


def _is_class_union(tp: Any) -> bool:
    args = _union_args(tp)
    return len(args) >= 2 and all(isinstance(a, type) and attrs.has(a) for a in args)


_JSON_DICT_VALUES = (Any, str)


def _is_json_dict(tp: Any) -> bool:
    if get_origin(tp) is not dict:
        return False
    key, value = get_args(tp)
    return key is str and (value in _JSON_DICT_VALUES or value == dict[str, Any])


# --- hook factories ----------------------------------------------------------------------


def _literal_hook(tp: Any, _: cattrs.Converter) -> Callable[[Any, Any], Any]:
    values = get_args(tp)
    if not all(type(v) is str for v in values):
        raise TypeError(f"only string literals are supported on the wire, got {tp!r}")
    allowed = frozenset(values)
    expected = _alternatives(list(values))

    def structure_literal(value: Any, _: Any) -> Any:
        if type(value) is str and value in allowed:
            return value
        raise _WireError(f"expected {expected}, got {_show(value)}")

    return structure_literal


def _json_dict_hook(tp: Any, _: cattrs.Converter) -> Callable[[Any, Any], Any]:
    value_type = get_args(tp)[1]

    def structure_object(value: Any, _: Any) -> Any:
        if type(value) is dict:
            return value
        raise _WireError(f"expected an object, got {_show(value)}")

    def structure_string_map(value: Any, _: Any) -> Any:
        if type(value) is not dict:
            raise _WireError(f"expected an object, got {_show(value)}")
        for key, item in value.items():
            if type(item) is not str:
                raise _WireError(f"expected a string, got {_show(item)}", (key,))
        return value

    def structure_object_map(value: Any, _: Any) -> Any:
        if type(value) is not dict:
            raise _WireError(f"expected an object, got {_show(value)}")
        for key, item in value.items():
            if type(item) is not dict:
                raise _WireError(f"expected an object, got {_show(item)}", (key,))
        return value

    if value_type is Any:
        return structure_object
    if value_type is str:
        return structure_string_map
    return structure_object_map


def _is_class_dict(tp: Any) -> bool:
    return get_origin(tp) is dict and get_args(tp)[0] is str and not _is_json_dict(tp)


def _class_dict_hook(tp: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    value_type = get_args(tp)[1]
    value_hook = conv.get_structure_hook(value_type)

    def structure_dict(value: Any, _: Any) -> Any:
        if type(value) is not dict:
            raise _WireError(f"expected an object, got {_show(value)}")
        return {key: value_hook(item, value_type) for key, item in value.items()}

    def structure_dict_detailed(value: Any, _: Any) -> Any:
        if type(value) is not dict:
            raise _WireError(f"expected an object, got {_show(value)}")
        out, errors = {}, []
        for key, item in value.items():
            try:
                out[key] = value_hook(item, value_type)
            except Exception as exc:
                note = IterableValidationNote(f"Structuring @ key {key!r}", key, value_type)
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {tp!r}", errors, tp)
        return out

    return structure_dict_detailed if conv.detailed_validation else structure_dict


def _is_list(tp: Any) -> bool:
    return get_origin(tp) is list


def _list_hook(tp: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    item_type = get_args(tp)[0]
    item_hook = conv.get_structure_hook(item_type)

    def structure_list(value: Any, _: Any) -> Any:
        if type(value) is not list:
            raise _WireError(f"expected an array, got {_show(value)}")
        return [item_hook(item, item_type) for item in value]

    def structure_list_detailed(value: Any, _: Any) -> Any:
        if type(value) is not list:
            raise _WireError(f"expected an array, got {_show(value)}")
        out, errors = [], []
        for index, item in enumerate(value):
            try:
                out.append(item_hook(item, item_type))
            except Exception as exc:
                note = IterableValidationNote(f"Structuring @ index {index}", index, item_type)
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {tp!r}", errors, tp)
        return out

    return structure_list_detailed if conv.detailed_validation else structure_list


def _without_none(tp: Any) -> Any:
    rest = [a for a in _union_args(tp) if a is not NoneType]
    return rest[0] if len(rest) == 1 else functools.reduce(operator.or_, rest)


def _optional_structure_hook(tp: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    inner = _without_none(tp)
    hook = conv.get_structure_hook(inner)

    def structure_optional(value: Any, _: Any) -> Any:
        if value is None:
            return None
        return hook(value, inner)

    return structure_optional


def _optional_unstructure_hook(tp: Any, conv: cattrs.Converter) -> Callable[[Any], Any]:
    hook = conv.get_unstructure_hook(_without_none(tp))
    if hook is identity:
        return identity

    def unstructure_optional(value: Any) -> Any:
        return None if value is None else hook(value)

    return unstructure_optional


# How a union of classes is told apart on the wire: by a discriminator member whose value is
# each class's default for that field, or (when there is none) by a member only one class has.
_DISCRIMINATORS = ("type", "mode", "method")
_DEFAULT_WHEN_ABSENT = {"mode": "form"}
_MISSING: Any = object()
_TELLTALE_MEMBERS: dict[type, tuple[str, ...]] = {
    t.TextResourceContents: ("text",),
    t.BlobResourceContents: ("blob",),
    t.ElicitResult: ("action",),
    t.ListRootsResult: ("roots",),
    t.CreateMessageResult: ("model",),
}


def _tag_field(members: tuple[type, ...]) -> str | None:
    for name in _DISCRIMINATORS:
        tags = []
        for cls in members:
            field = getattr(attrs.fields(cls), name, None)
            if field is None or not isinstance(field.default, str):
                break
            tags.append(field.default)
        else:
            if len(set(tags)) == len(tags):
                return name
    return None


def _class_union_structure_hook(tp: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    members: tuple[type, ...] = get_args(tp)
    tag = _tag_field(members)
    if tag is not None:
        by_tag = {getattr(attrs.fields(cls), tag).default: cls for cls in members}
        hooks = {value: conv.get_structure_hook(cls) for value, cls in by_tag.items()}
        expected = _alternatives(list(by_tag))
        absent = _DEFAULT_WHEN_ABSENT.get(tag, _MISSING)

        def structure_tagged(value: Any, _: Any) -> Any:
            if type(value) is not dict:
                raise _WireError(f"expected an object, got {_show(value)}")
            key = value.get(tag, absent)
            hook = hooks.get(key) if type(key) is str else None
            if hook is None:
                if key is _MISSING:
                    raise _WireError("required field missing", (tag,))
                raise _WireError(f"expected {expected}, got {_show(key)}", (tag,))
            return hook(value, by_tag[key])

        return structure_tagged

    telltales: list[tuple[str, type, Callable[[Any, Any], Any]]] = []
    for cls in members:
        names = _TELLTALE_MEMBERS.get(cls)
        if names is None:
            raise TypeError(f"no way to tell {cls.__name__} apart in {tp!r}")
        telltales.extend((name, cls, conv.get_structure_hook(cls)) for name in names)
    wanted = _alternatives([name for name, _, _ in telltales])

    def structure_by_member(value: Any, _: Any) -> Any:
        if type(value) is not dict:
            raise _WireError(f"expected an object, got {_show(value)}")
        for name, cls, hook in telltales:
            if name in value:
                return hook(value, cls)
        raise _WireError(f"expected an object with a {wanted} member")

    return structure_by_member


def _class_union_unstructure_hook(tp: Any, conv: cattrs.Converter) -> Callable[[Any], Any]:
    members: tuple[type, ...] = get_args(tp)
    hooks = {cls: conv.get_unstructure_hook(cls) for cls in members}
    names = ", ".join(cls.__name__ for cls in members)

    def unstructure_member(value: Any) -> Any:
        hook = hooks.get(value.__class__)
        if hook is None:
            raise TypeError(f"expected one of {names}, got {type(value).__name__}")
        return hook(value)

    return unstructure_member


def _one_or_many_structure_hook(tp: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    many = _union_args(tp)[-1]
    one = get_args(many)[0]
    one_hook = conv.get_structure_hook(one)
    many_hook = conv.get_structure_hook(many)

    def structure_one_or_many(value: Any, _: Any) -> Any:
        if type(value) is list:
            return many_hook(value, many)
        return one_hook(value, one)

    return structure_one_or_many


def _one_or_many_unstructure_hook(tp: Any, conv: cattrs.Converter) -> Callable[[Any], Any]:
    one_hook = conv.get_unstructure_hook(get_args(_union_args(tp)[-1])[0])

    def unstructure_one_or_many(value: Any) -> Any:
        if type(value) is list:
            return [one_hook(item) for item in value]
        return one_hook(value)

    return unstructure_one_or_many


def _attrs_structure_hook(cls: type, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    renames: dict[str, Any] = {
        f.name: override(rename=_field_wire_name(f)) for f in attrs.fields(cls)
    }
    generated: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, conv, **renames)
    kind = f"a {cls.__name__} object"

    def structure_object(value: Any, tp: Any) -> Any:
        # The generated function would accept a string or a list for a class whose
        # fields are all optional (``"x" in "abc"`` is just False).
        if type(value) is not dict:
            raise _WireError(f"expected {kind}, got {_show(value)}")
        return generated(value, tp)

    return structure_object


def _attrs_unstructure_hook(cls: type, conv: cattrs.Converter) -> Callable[[Any], Any]:
    fields: dict[str, Any] = {
        f.name: override(rename=_field_wire_name(f), omit_if_default=f.default is None)
        for f in attrs.fields(cls)
    }
    return make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=False, **fields)


def _make_converter(*, detailed: bool) -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=False)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(bytes, _structure_bytes)
    conv.register_unstructure_hook(bytes, _unstructure_bytes)
    conv.register_structure_hook_func(_is_any, _structure_any)
    conv.register_unstructure_hook_func(_is_any, identity)
    conv.register_structure_hook_factory(_is_literal, _literal_hook)
    conv.register_unstructure_hook_func(_is_literal, identity)
    conv.register_structure_hook_factory(_is_json_dict, _json_dict_hook)
    conv.register_unstructure_hook_func(_is_json_dict, identity)
    conv.register_structure_hook_factory(_is_list, _list_hook)
    conv.register_structure_hook_factory(_is_class_dict, _class_dict_hook)
    conv.register_structure_hook_factory(attrs.has, _attrs_structure_hook)
    conv.register_unstructure_hook_factory(attrs.has, _attrs_unstructure_hook)
    conv.register_structure_hook_factory(_is_class_union, _class_union_structure_hook)
    conv.register_unstructure_hook_factory(_is_class_union, _class_union_unstructure_hook)
    conv.register_structure_hook_factory(_is_one_or_many, _one_or_many_structure_hook)
    conv.register_unstructure_hook_factory(_is_one_or_many, _one_or_many_unstructure_hook)
    conv.register_structure_hook_func(_is_request_id, _structure_request_id)
    conv.register_unstructure_hook_func(_is_request_id, identity)
    conv.register_structure_hook_factory(_is_optional, _optional_structure_hook)
    conv.register_unstructure_hook_factory(_is_optional, _optional_unstructure_hook)
    return conv


_FAST = _make_converter(detailed=False)


@functools.cache
def _diagnostic() -> cattrs.Converter:
    return _make_converter(detailed=True)


@functools.cache
def _structure_hook(tp: Any) -> Callable[[Any, Any], Any]:
    return _FAST.get_structure_hook(tp)


@functools.cache
def _unstructure_hook(cls: type) -> Callable[[Any], Any]:
    if not attrs.has(cls):
        raise TypeError(f"to_wire() takes an mcptrio.types object, got {cls.__name__}")
    return _FAST.get_unstructure_hook(cls)


# --- public API --------------------------------------------------------------------------


def to_wire(obj: Any) -> dict[str, Any]:
    """The wire form of a :mod:`mcptrio.types` object, ready for ``orjson.dumps``.

    Binary fields become base64 strings; open-ended JSON fields are shared, not copied.
    """
    return cast(dict[str, Any], _unstructure_hook(obj.__class__)(obj))


@overload
def from_wire(cls: type[T], data: Any, *, path: str = "") -> T: ...
@overload
def from_wire(cls: Any, data: Any, *, path: str = "") -> Any: ...
def from_wire(cls: Any, data: Any, *, path: str = "") -> Any:
    """Decode wire JSON into ``cls`` (a :mod:`mcptrio.types` class or union alias).

    Unknown members are ignored. Raises :class:`~mcptrio._protocol.errors.InvalidParams` naming the
    offending field path (prefixed with ``path``, e.g. ``"params"``) and what was wrong.
    """
    hook = _structure_hook(cls)  # outside the try: an unsupported class is a bug, not bad input
    try:
        return hook(data, cls)
    except Exception as exc:
        first_error: BaseException = exc
    try:
        _diagnostic().structure(data, cls)
    except Exception as exc:
        first_error = exc
    problems: list[str] = []
    _collect(first_error, (), problems, path)
    shown = "; ".join(problems[:3])
    if len(problems) > 3:
        shown += f"; and {len(problems) - 3} more"
    raise InvalidParams(shown) from None


def content_from_wire(data: Any, *, path: str = "") -> t.ContentBlock:
    """Decode one content block (text, image, audio, resource link, embedded resource)."""
    return cast(t.ContentBlock, from_wire(t.ContentBlock, data, path=path))


def result_from_wire(
    cls: type[T], data: Any, *, path: str = ""
) -> T | t.InputRequiredResult | t.DetailedTask:
    """Decode a result that may instead be a 2026 MRTR or task result.

    ``resultType: "input_required"`` gives an :class:`~mcptrio.types.InputRequiredResult`,
    ``"task"`` a :class:`~mcptrio.types.DetailedTask`; anything else (or none) gives ``cls``.
    """
    if type(data) is dict:
        result_type = data.get("resultType")
        if result_type == "input_required":
            return from_wire(t.InputRequiredResult, data, path=path)
        if result_type == "task":
            return from_wire(t.DetailedTask, data, path=path)
    return from_wire(cls, data, path=path)
