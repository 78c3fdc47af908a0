from __future__ import annotations

import importlib.util
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcptrio._server import validation as _validation
from mcptrio._server.validation import (
    SchemaError,
    check_schema,
    compile_validator,
    format_path,
)

HAS_RUST = importlib.util.find_spec("jsonschema_rs") is not None
BACKENDS = ["jsonschema_rs", "jsonschema"] if HAS_RUST else ["jsonschema"]

OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "count": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "count"],
    "additionalProperties": False,
}


def _use_backend(name: str) -> None:
    _validation._BACKEND = (
        _validation._RustBackend if name == "jsonschema_rs" else _validation._PythonBackend
    )
    if name == "jsonschema_rs":
        _validation._meta_errors = _validation._rust_meta_errors
    else:
        _validation._meta_errors = _validation._python_meta_errors
    _validation._compile_cached.cache_clear()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    saved = (_validation._BACKEND, _validation._meta_errors)
    _use_backend(request.param)
    yield request.param
    _validation._BACKEND, _validation._meta_errors = saved
    _validation._compile_cached.cache_clear()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("validation tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def _quoted(text: str) -> tuple[str, str]:
    # jsonschema_rs quotes like JSON ("abc"), jsonschema like Python ('abc').
    return f'"{text}"', f"'{text}'"


def test_valid_instance_has_no_errors(backend: str) -> None:
    validator = compile_validator(OBJECT_SCHEMA)
    assert validator.is_valid({"name": "a", "count": 1, "tags": ["x"]})
    assert validator.errors({"name": "a", "count": 1}) == []


def test_errors_name_the_json_path(backend: str) -> None:
    validator = compile_validator(OBJECT_SCHEMA)
    errors = validator.errors({"count": "abc", "tags": ["ok", 5], "extra": 1})
    assert not validator.is_valid({"count": "abc"})
    by_path = {line.split(":", 1)[0]: line for line in errors}
    assert set(by_path) == {"root", "count", "tags[1]"}
    assert any(q in by_path["count"] for q in _quoted("abc"))
    assert "is not of type" in by_path["count"] and "integer" in by_path["count"]
    root_lines = [line for line in errors if line.startswith("root: ")]
    assert any("name" in line and "required property" in line for line in root_lines)
    assert any("extra" in line and "not allowed" in line for line in root_lines)


def test_error_limit(backend: str) -> None:
    validator = compile_validator({"type": "array", "items": {"type": "integer"}})
    errors = validator.errors(["x"] * 30, limit=5)
    assert len(errors) == 6
    assert errors[-1] == "... and 25 more errors"
    assert len(validator.errors(["x"] * 30, limit=None)) == 30


def test_format_path() -> None:
    assert format_path([]) == "root"
    assert format_path(["a", 0, "b_c", "odd key", 3]) == 'a[0].b_c["odd key"][3]'
    assert format_path([0]) == "[0]"


def test_default_dialect_is_2020_12(backend: str) -> None:
    # prefixItems only means something in 2020-12.
    validator = compile_validator({"type": "array", "prefixItems": [{"type": "integer"}]})
    assert validator.dialect == "2020-12"
    assert not validator.is_valid(["a"])
    assert validator.is_valid([1, "b"])


def test_draft_07_schema_works(backend: str) -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"n": {"type": "integer"}},
        "items": [{"$ref": "#/definitions/n"}],
    }
    validator = compile_validator(schema)
    assert validator.dialect == "draft-07"
    assert validator.is_valid([1, "x"])
    assert validator.errors(["x"]) and validator.errors(["x"])[0].startswith("[0]: ")


def test_unsupported_dialect_is_refused(backend: str, no_network: None) -> None:
    with pytest.raises(SchemaError, match=r"unsupported JSON Schema dialect.*2020-12"):
        compile_validator({"$schema": "https://example.com/my-dialect", "type": "string"})
    problems = check_schema({"$schema": "http://json-schema.org/draft-03/schema#"})
    assert len(problems) == 1 and "unsupported JSON Schema dialect" in problems[0]


def test_local_refs_resolve(backend: str) -> None:
    schema = {
        "type": "object",
        "properties": {"tree": {"$ref": "#/$defs/Node"}},
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
                "additionalProperties": False,
            }
        },
    }
    validator = compile_validator(schema)
    assert validator.is_valid({"tree": {"kids": [{"kids": []}]}})
    assert validator.errors({"tree": {"kids": [{"oops": 1}]}})[0].startswith("tree.kids[0]: ")


def test_embedded_resources_resolve(backend: str) -> None:
    schema = {
        "$id": "https://example.com/root.json",
        "properties": {"a": {"$ref": "item.json"}},
        "$defs": {"item": {"$id": "item.json", "type": "string"}},
    }
    assert compile_validator(schema).errors({"a": 1})[0].startswith("a: ")


@pytest.mark.parametrize(
    "ref", ["https://example.com/schema.json", "other.json#/x", "http://127.0.0.1:9/s"]
)
def test_remote_refs_are_never_fetched(backend: str, no_network: None, ref: str) -> None:
    schema = {"properties": {"a": {"$ref": ref}}}
    with pytest.raises(SchemaError, match="only local references"):
        compile_validator(schema)
    assert any("only local references" in line for line in check_schema(schema))


def test_a_property_named_ref_is_not_a_reference(backend: str) -> None:
    schema = {"properties": {"$ref": {"type": "string"}}, "default": {"$ref": "http://x"}}
    assert compile_validator(schema).is_valid({"$ref": "https://example.com"})


def test_dangling_local_pointer(backend: str) -> None:
    with pytest.raises(SchemaError, match="points to nothing"):
        compile_validator({"$ref": "#/$defs/missing"})


def test_check_schema_reports_problems(backend: str) -> None:
    assert check_schema(OBJECT_SCHEMA) == []
    assert check_schema(True) == []
    problems = check_schema({"type": "strin", "properties": {"a": {"minimum": "x"}}})
    assert {line.split(":", 1)[0] for line in problems} == {"type", "properties.a.minimum"}
    bad_regex = check_schema({"properties": {"a": {"type": "string", "pattern": "(("}}})
    assert len(bad_regex) == 1 and "properties.a.pattern" in bad_regex[0]
    assert check_schema([1]) == ["root: a schema must be a JSON object or boolean, not list"]
    assert check_schema({"type": "string"}, require_object_root=True) == [
        'root: the schema\'s root must have "type": "object"'
    ]
    assert check_schema(OBJECT_SCHEMA, require_object_root=True) == []


def test_compile_rejects_invalid_schema(backend: str) -> None:
    with pytest.raises(SchemaError, match="invalid JSON Schema"):
        compile_validator({"type": "strin"})
    with pytest.raises(SchemaError, match="not JSON-serializable"):
        compile_validator({"enum": [{1, 2}]})
    with pytest.raises(SchemaError, match="JSON object or boolean"):
        compile_validator([{"type": "string"}])


def test_validators_are_cached_by_content(backend: str) -> None:
    a = compile_validator({"type": "object", "properties": {"x": {"type": "integer"}}})
    b = compile_validator({"properties": {"x": {"type": "integer"}}, "type": "object"})
    assert a is b
    assert compile_validator({"type": "string"}) is not a


def test_cached_validator_is_immune_to_caller_mutation(backend: str) -> None:
    schema: dict[str, Any] = {"type": "integer"}
    validator = compile_validator(schema)
    schema["type"] = "string"
    assert validator.is_valid(3)
    assert validator.schema == {"type": "integer"}


def test_cache_is_bounded(backend: str) -> None:
    for i in range(_validation._CACHE_SIZE + 20):
        compile_validator({"type": "integer", "maximum": i})
    assert _validation._compile_cached.cache_info().currsize == _validation._CACHE_SIZE


def test_integers_written_as_floats_and_big_integers(backend: str) -> None:
    validator = compile_validator({"type": "integer"})
    assert validator.is_valid(3.0)
    assert validator.is_valid(2**70)
    assert not validator.is_valid(3.5)
    assert not validator.is_valid(True)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)
SCHEMAS: list[Any] = [
    OBJECT_SCHEMA,
    {"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer", "minimum": 3}]},
    {"type": "array", "prefixItems": [{"type": "boolean"}], "items": {"type": "null"}},
    {"type": "object", "additionalProperties": {"type": "number"}, "minProperties": 1},
    {"not": {"type": ["object", "array"]}, "enum": [None, True, 1, "a", 2.5]},
]


@pytest.mark.skipif(not HAS_RUST, reason="jsonschema_rs is not installed")
@settings(max_examples=200, deadline=None)
@given(
    schema=st.sampled_from(SCHEMAS),
    instance=json_values
    | st.fixed_dictionaries({"name": st.text(max_size=2), "count": st.integers(-2, 2)}),
)
def test_backends_agree(schema: Any, instance: Any) -> None:
    rust = _validation._RustBackend(schema, "2020-12")
    python = _validation._PythonBackend(schema, "2020-12")
    assert rust.is_valid(instance) == python.is_valid(instance)
    rust_paths = sorted(str(path) for path, _ in rust.iter_errors(instance))
    python_paths = sorted(str(path) for path, _ in python.iter_errors(instance))
    assert bool(rust_paths) == bool(python_paths)


@given(instance=json_values)
def test_errors_empty_exactly_when_valid(instance: Any) -> None:
    validator = compile_validator(SCHEMAS[1])
    assert (validator.errors(instance) == []) == validator.is_valid(instance)
