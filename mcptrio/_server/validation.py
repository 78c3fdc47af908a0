"""JSON Schema validation for tool arguments and results, compiled once and cached.

JSON Schema 2020-12 is the dialect when ``$schema`` is absent (MCP 2025-11-25 and later);
draft 2019-09, 07, 06 and 04 are honoured when ``$schema`` names them, and any other
``$schema`` is refused with an error saying which ones work. References resolve only
inside the schema itself: a ``$ref`` to another document is an error and nothing is
ever fetched from the network.

``jsonschema_rs`` does the work when it is installed (about a microsecond per call);
otherwise the pure-Python ``jsonschema`` package does, with the same messages format.
Sans-IO: no trio here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any, Protocol
from urllib.parse import urldefrag, urljoin

import orjson

__all__ = [
    "DIALECTS",
    "SchemaError",
    "SchemaValidator",
    "check_schema",
    "compile_validator",
    "format_path",
]

DIALECTS: dict[str, str] = {
    "json-schema.org/draft/2020-12/schema": "2020-12",
    "json-schema.org/draft/2019-09/schema": "2019-09",
    "json-schema.org/draft-07/schema": "draft-07",
    "json-schema.org/draft-06/schema": "draft-06",
    "json-schema.org/draft-04/schema": "draft-04",
}
"""Supported ``$schema`` values (scheme and trailing ``#`` ignored) and their dialect names."""

_META_URIS = {
    "2020-12": "https://json-schema.org/draft/2020-12/schema",
    "2019-09": "https://json-schema.org/draft/2019-09/schema",
    "draft-07": "http://json-schema.org/draft-07/schema#",
    "draft-06": "http://json-schema.org/draft-06/schema#",
    "draft-04": "http://json-schema.org/draft-04/schema#",
}
_CACHE_SIZE = 512
_DEFAULT_LIMIT = 50
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class SchemaError(ValueError):
    """The schema is unusable: invalid, of an unsupported dialect, or with a remote ``$ref``."""


class _Backend(Protocol):
    def is_valid(self, instance: Any) -> bool: ...

    def iter_errors(self, instance: Any) -> Iterator[tuple[list[str | int], str]]: ...


class SchemaValidator:
    """A compiled schema; get one from :func:`compile_validator` (which caches them)."""

    __slots__ = ("_backend", "dialect", "schema")

    def __init__(self, schema: Any, dialect: str, backend: _Backend) -> None:
        self.schema = schema
        self.dialect = dialect
        self._backend = backend

    def is_valid(self, instance: Any) -> bool:
        """Whether ``instance`` (a JSON value) conforms to the schema."""
        return self._backend.is_valid(instance)

    def errors(self, instance: Any, *, limit: int | None = _DEFAULT_LIMIT) -> list[str]:
        """One line per violation, such as ``"count: 'abc' is not of type 'integer'"``.

        Each line starts with the JSON path of the offending value (``root`` for the
        instance itself, ``items[2].name`` below it). An empty list means valid. At most
        ``limit`` lines are returned, the last one saying how many more there were.
        """
        if self._backend.is_valid(instance):
            return []
        out: list[str] = []
        extra = 0
        for path, message in self._backend.iter_errors(instance):
            if limit is not None and len(out) >= limit:
                extra += 1
                continue
            out.append(f"{format_path(path)}: {message}")
        if extra:
            out.append(f"... and {extra} more errors")
        return out

    def __repr__(self) -> str:
        return f"SchemaValidator(dialect={self.dialect!r}, schema={self.schema!r})"


def compile_validator(schema: Any) -> SchemaValidator:
    """Compile ``schema`` (a JSON object or boolean) into a validator, reusing a cached one.

    Raises :class:`SchemaError` when the schema cannot be used (check it first with
    :func:`check_schema` for the full list of problems).
    """
    try:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:
        raise SchemaError(f"schema is not JSON-serializable: {exc}") from None
    return _compile_cached(key)


def check_schema(schema: Any, *, require_object_root: bool = False) -> list[str]:
    """Every problem that makes ``schema`` unusable, one line each; empty when it is fine.

    With ``require_object_root``, a root that is not ``"type": "object"`` is a problem too
    (MCP requires that for ``inputSchema``, and for ``outputSchema`` before 2026-07-28).
    """
    if not isinstance(schema, dict | bool):
        return [f"root: a schema must be a JSON object or boolean, not {type(schema).__name__}"]
    problems: list[str] = []
    if require_object_root and (not isinstance(schema, dict) or schema.get("type") != "object"):
        problems.append('root: the schema\'s root must have "type": "object"')
    try:
        orjson.dumps(schema)
    except TypeError as exc:
        return [*problems, f"root: schema is not JSON-serializable: {exc}"]
    try:
        dialect = _dialect_of(schema)
    except SchemaError as exc:
        return [*problems, f"root: {exc}"]
    meta_errors = _meta_errors(schema, dialect)
    problems.extend(f"{format_path(path)}: {message}" for path, message in meta_errors)
    if not meta_errors:
        try:
            compile_validator(schema)
        except SchemaError as exc:
            problems.append(str(exc))
    return problems


def format_path(path: Iterable[str | int]) -> str:
    """A JSON path for messages: ``root``, ``name``, ``items[0].id``, ``["odd key"]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{orjson.dumps(part).decode()}]"
    return out or "root"


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile_cached(key: bytes) -> SchemaValidator:
    # Compiling from the canonical bytes gives the validator its own copy of the schema,
    # so a caller mutating its dict later cannot change a cached validator.
    schema = orjson.loads(key)
    if not isinstance(schema, dict | bool):
        raise SchemaError(f"a schema must be a JSON object or boolean, not {type(schema).__name__}")
    dialect = _dialect_of(schema)
    _check_refs(schema)
    return SchemaValidator(schema, dialect, _BACKEND(schema, dialect))


def _dialect_of(schema: Any) -> str:
    if not isinstance(schema, dict) or "$schema" not in schema:
        return "2020-12"
    uri = schema["$schema"]
    if isinstance(uri, str):
        bare = uri.split("://", 1)[-1].rstrip("#")
        if bare in DIALECTS:
            return DIALECTS[bare]
    supported = ", ".join(sorted(set(DIALECTS.values())))
    raise SchemaError(f"unsupported JSON Schema dialect $schema={uri!r}; supported: {supported}")


# Keywords whose value is a schema, an array of schemas, or a name -> schema map. Only
# these are walked, so "$ref" as a property name or inside "default" is not a reference.
_SCHEMA_KEYWORDS = frozenset(
    {
        "additionalItems",
        "additionalProperties",
        "contains",
        "contentSchema",
        "else",
        "if",
        "items",
        "not",
        "propertyNames",
        "then",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
_SCHEMA_ARRAY_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})
_SCHEMA_MAP_KEYWORDS = frozenset(
    {"$defs", "definitions", "dependentSchemas", "patternProperties", "properties"}
)
_LOCAL_BASE = "https://mcptrio.invalid/schema.json"


def _check_refs(schema: Any) -> None:
    """Refuse references to documents outside ``schema`` (never fetched) and dangling pointers."""
    ids: set[str] = set()
    refs: list[tuple[str, str]] = []

    def walk(node: Any, base: str) -> None:
        if not isinstance(node, dict):
            return
        node_id = node.get("$id") or node.get("id")
        if isinstance(node_id, str) and not node_id.startswith("#"):
            base = urldefrag(_resolve(base, node_id)).url
            ids.add(base)
        for word in ("$ref", "$dynamicRef", "$recursiveRef"):
            ref = node.get(word)
            if isinstance(ref, str):
                refs.append((ref, _resolve(base, ref)))
        for word, value in node.items():
            if word in _SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
                for sub in value.values():
                    walk(sub, base)
            elif word in _SCHEMA_ARRAY_KEYWORDS and isinstance(value, list):
                for sub in value:
                    walk(sub, base)
            elif word in _SCHEMA_KEYWORDS or word == "dependencies":
                walk(value, base)

    root_id = schema.get("$id") if isinstance(schema, dict) else None
    root = _LOCAL_BASE if not isinstance(root_id, str) else _resolve(_LOCAL_BASE, root_id)
    root = urldefrag(root).url
    ids.add(root)
    walk(schema, root)
    for ref, resolved in refs:
        document, fragment = urldefrag(resolved)
        if document not in ids:
            raise SchemaError(
                f"$ref {ref!r} points outside this schema; only local references "
                "(such as '#/$defs/Name') resolve, and remote schemas are never fetched"
            )
        if document == root and fragment.startswith("/") and not _has_pointer(schema, fragment):
            raise SchemaError(f"$ref {ref!r} points to nothing in this schema")


def _resolve(base: str, ref: str) -> str:
    # urljoin ignores the base for schemes it does not know (urn:, tag:), so a bare
    # fragment is joined by hand.
    if ref.startswith("#"):
        return urldefrag(base).url + ref
    return urljoin(base, ref)


def _has_pointer(schema: Any, pointer: str) -> bool:
    node = schema
    for raw in pointer.split("/")[1:]:
        part = raw.replace("%25", "%").replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _refuse_retrieval(uri: str) -> Any:
    raise SchemaError(f"remote schema {uri!r} is not fetched; only local references resolve")


# --- jsonschema_rs backend -------------------------------------------------------------


class _RustBackend:
    __slots__ = ("_validator",)

    def __init__(self, schema: Any, dialect: str) -> None:
        cls = _RS_CLASSES[dialect]
        try:
            self._validator = cls(schema, retriever=_refuse_retrieval)
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError) as exc:
            where = format_path(getattr(exc, "instance_path", None) or ())
            raise SchemaError(f"invalid JSON Schema at {where}: {_first_line(exc)}") from None

    def is_valid(self, instance: Any) -> bool:
        return bool(self._validator.is_valid(instance))

    def iter_errors(self, instance: Any) -> Iterator[tuple[list[str | int], str]]:
        for error in self._validator.iter_errors(instance):
            yield list(error.instance_path), error.message


def _rust_meta_errors(schema: Any, dialect: str) -> list[tuple[list[str | int], str]]:
    meta = _rust_meta_validator(dialect)
    return [(list(e.instance_path), e.message) for e in meta.iter_errors(schema)]


@functools.cache
def _rust_meta_validator(dialect: str) -> Any:
    # The meta-schemas are built into jsonschema_rs; this reference never leaves the process.
    return _RS_CLASSES[dialect]({"$ref": _META_URIS[dialect]}, retriever=_refuse_retrieval)


def _first_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return str(message).strip().splitlines()[0]


# --- jsonschema backend ----------------------------------------------------------------


class _PythonBackend:
    __slots__ = ("_validator",)

    def __init__(self, schema: Any, dialect: str) -> None:
        import jsonschema
        import referencing

        cls = _PY_CLASSES[dialect]
        try:
            cls.check_schema(schema)
            # attrs names the init argument "retrieve"; typing stubs only see "_retrieve".
            registry_cls: Any = referencing.Registry
            registry = registry_cls(retrieve=_refuse_retrieval)
            self._validator = cls(schema, registry=registry)
            # Bad regexes are only found when used; compile them now, like jsonschema_rs.
            for message in _bad_patterns(schema):
                raise SchemaError(f"invalid JSON Schema {message}")
        except jsonschema.SchemaError as exc:
            where = format_path(exc.absolute_path)
            raise SchemaError(f"invalid JSON Schema at {where}: {exc.message}") from None

    def is_valid(self, instance: Any) -> bool:
        return bool(self._validator.is_valid(instance))

    def iter_errors(self, instance: Any) -> Iterator[tuple[list[str | int], str]]:
        for error in self._validator.iter_errors(instance):
            yield list(error.absolute_path), error.message


def _python_meta_errors(schema: Any, dialect: str) -> list[tuple[list[str | int], str]]:
    cls = _PY_CLASSES[dialect]
    meta = cls(cls.META_SCHEMA, format_checker=cls.FORMAT_CHECKER)
    return [(list(e.absolute_path), e.message) for e in meta.iter_errors(schema)]


def _bad_patterns(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[str]:
    if isinstance(node, dict):
        for word, value in node.items():
            if word == "pattern" and isinstance(value, str) and not _compiles(value):
                yield f"at {format_path((*path, word))}: {value!r} is not a 'regex'"
            elif word == "patternProperties" and isinstance(value, dict):
                for key in value:
                    if not _compiles(key):
                        yield f"at {format_path((*path, word))}: {key!r} is not a 'regex'"
            if word not in ("enum", "const", "default", "examples"):
                yield from _bad_patterns(value, (*path, word))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _bad_patterns(item, (*path, index))


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def _python_classes() -> dict[str, Any]:
    import jsonschema

    return {
        "2020-12": jsonschema.Draft202012Validator,
        "2019-09": jsonschema.Draft201909Validator,
        "draft-07": jsonschema.Draft7Validator,
        "draft-06": jsonschema.Draft6Validator,
        "draft-04": jsonschema.Draft4Validator,
    }


_PY_CLASSES = _python_classes()

_BACKEND: type[_RustBackend] | type[_PythonBackend]
try:
    import jsonschema_rs
except ImportError:  # pragma: no cover - depends on the environment
    _BACKEND = _PythonBackend
    _meta_errors = _python_meta_errors
    BACKEND_NAME = "jsonschema"
else:
    _RS_CLASSES: dict[str, Any] = {
        "2020-12": jsonschema_rs.Draft202012Validator,
        "2019-09": jsonschema_rs.Draft201909Validator,
        "draft-07": jsonschema_rs.Draft7Validator,
        "draft-06": jsonschema_rs.Draft6Validator,
        "draft-04": jsonschema_rs.Draft4Validator,
    }
    _BACKEND = _RustBackend
    _meta_errors = _rust_meta_errors
    BACKEND_NAME = "jsonschema_rs"
