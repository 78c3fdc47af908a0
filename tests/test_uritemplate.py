from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcptrio._protocol.uritemplate import UriTemplate

# RFC 6570 section 3.2 example variables.
RFC_VALUES: dict[str, Any] = {
    "count": ["one", "two", "three"],
    "dom": ["example", "com"],
    "dub": "me/too",
    "hello": "Hello World!",
    "half": "50%",
    "var": "value",
    "who": "fred",
    "base": "http://example.com/home/",
    "path": "/foo/bar",
    "list": ["red", "green", "blue"],
    "keys": {"semi": ";", "dot": ".", "comma": ","},
    "v": "6",
    "x": "1024",
    "y": "768",
    "empty": "",
    "empty_keys": {},
    "undef": None,
}

RFC_CASES = [
    # Level 1
    ("{var}", "value"),
    ("{hello}", "Hello%20World%21"),
    ("{half}", "50%25"),
    ("O{empty}X", "OX"),
    ("O{undef}X", "OX"),
    # Level 2
    ("{+var}", "value"),
    ("{+hello}", "Hello%20World!"),
    ("{+half}", "50%25"),
    ("{base}index", "http%3A%2F%2Fexample.com%2Fhome%2Findex"),
    ("{+base}index", "http://example.com/home/index"),
    ("{+path}/here", "/foo/bar/here"),
    ("here?ref={+path}", "here?ref=/foo/bar"),
    ("X{#var}", "X#value"),
    ("X{#hello}", "X#Hello%20World!"),
    # Level 3
    ("map?{x,y}", "map?1024,768"),
    ("{x,hello,y}", "1024,Hello%20World%21,768"),
    ("{+x,hello,y}", "1024,Hello%20World!,768"),
    ("{+path,x}/here", "/foo/bar,1024/here"),
    ("{#x,hello,y}", "#1024,Hello%20World!,768"),
    ("{#path,x}/here", "#/foo/bar,1024/here"),
    ("X{.var}", "X.value"),
    ("X{.x,y}", "X.1024.768"),
    ("{/var}", "/value"),
    ("{/var,x}/here", "/value/1024/here"),
    ("{;x,y}", ";x=1024;y=768"),
    ("{;x,y,empty}", ";x=1024;y=768;empty"),
    ("{?x,y}", "?x=1024&y=768"),
    ("{?x,y,empty}", "?x=1024&y=768&empty="),
    ("?fixed=yes{&x}", "?fixed=yes&x=1024"),
    ("{&x,y,empty}", "&x=1024&y=768&empty="),
    # Lists and associative arrays without the explode modifier
    ("{count}", "one,two,three"),
    ("{dom}", "example,com"),
    ("{list}", "red,green,blue"),
    ("{keys}", "semi,%3B,dot,.,comma,%2C"),
    ("{+keys}", "semi,;,dot,.,comma,,"),
    ("{/list}", "/red,green,blue"),
    ("{;list}", ";list=red,green,blue"),
    ("{?list}", "?list=red,green,blue"),
    ("{?empty_keys}", ""),
    ("{var,undef,who}", "value,fred"),
]


@pytest.mark.parametrize(("template", "expected"), RFC_CASES)
def test_rfc_6570_expansion(template: str, expected: str) -> None:
    assert UriTemplate(template).expand(RFC_VALUES) == expected


def test_expand_non_string_values() -> None:
    template = UriTemplate("q{?n,f,b,items}")
    assert template.expand({"n": 3, "f": 1.5, "b": True, "items": [1, "é"]}) == (
        "q?n=3&f=1.5&b=true&items=1,%C3%A9"
    )
    with pytest.raises(TypeError, match="cannot expand"):
        template.expand({"n": object()})


def test_literals_are_encoded_but_keep_reserved_characters() -> None:
    template = UriTemplate("a b/ü/%41/{x}")
    assert template.expand({"x": "y"}) == "a%20b/%C3%BC/%41/y"
    assert template.match("a%20b/%C3%BC/%41/y") == {"x": "y"}


def test_variables_and_is_template() -> None:
    template = UriTemplate("users/{id}/files{/path,id}{?q,page}")
    assert template.variables == ("id", "path", "q", "page")
    assert template.is_template
    plain = UriTemplate("file:///etc/hosts")
    assert not plain.is_template
    assert plain.variables == ()
    assert plain.expand({}) == "file:///etc/hosts"
    assert plain.match("file:///etc/hosts") == {}
    assert plain.match("file:///etc/passwd") is None


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("users/{id", "unclosed '{' at position 6"),
        ("users/id}", "unmatched '}' at position 8"),
        ("a{}b", "empty expression"),
        ("{a b}", "invalid variable name 'a b'"),
        ("{x,}", "invalid variable name ''"),
        ("{x-y}", "invalid variable name 'x-y'"),
        ("{a{b}}", "nested '{'"),
        ("{=x}", "operator '=' is reserved"),
        ("{|x}", "operator '|' is reserved"),
        ("{path*}", "level 4 modifiers"),
        ("{var:3}", "level 4 modifiers"),
    ],
)
def test_malformed_templates(template: str, message: str) -> None:
    with pytest.raises(ValueError, match="URI template") as info:
        UriTemplate(template)
    assert message in str(info.value)


def test_simple_variable_does_not_cross_slashes() -> None:
    template = UriTemplate("users/{id}/profile")
    assert template.match("users/42/profile") == {"id": "42"}
    assert template.match("users/4/2/profile") is None
    assert template.match("users//profile") is None
    assert template.match("users/42/profile?x=1") is None


def test_path_segment_variable_does_not_cross_slashes() -> None:
    template = UriTemplate("users{/id}/posts")
    assert template.match("users/7/posts") == {"id": "7"}
    assert template.match("users/7/8/posts") is None


def test_reserved_variable_may_cross_slashes() -> None:
    template = UriTemplate("file:///{+path}")
    assert template.match("file:///etc/nginx/nginx.conf") == {"path": "etc/nginx/nginx.conf"}
    assert template.match("file:///a%20b/c") == {"path": "a b/c"}
    assert UriTemplate("repo://{owner}/{+path}/raw").match("repo://me/src/a.py/raw") == {
        "owner": "me",
        "path": "src/a.py",
    }


def test_match_decodes_percent_encoding() -> None:
    template = UriTemplate("notes://{title}")
    assert template.match("notes://Hello%20W%C3%B6rld%2F2") == {"title": "Hello Wörld/2"}


def test_optional_expressions_may_be_absent() -> None:
    template = UriTemplate("docs{/section,page}{;v}{#anchor}")
    assert template.match("docs") == {}
    assert template.match("docs/intro") == {"section": "intro"}
    assert template.match("docs/intro/3;v=2#top") == {
        "section": "intro",
        "page": "3",
        "v": "2",
        "anchor": "top",
    }
    assert UriTemplate("X{.x,y}").match("X.1024.768") == {"x": "1024", "y": "768"}


def test_ambiguous_templates_let_earlier_variables_take_more() -> None:
    # "." is unreserved, so "3.html" is a valid value for {/page}: RFC 6570 cannot tell.
    template = UriTemplate("docs{/page}{.format}")
    assert template.match("docs/3.html") == {"page": "3.html"}
    assert template.expand({"page": "3", "format": "html"}) == "docs/3.html"


def test_trailing_query_matches_in_any_order_and_ignores_unknown_parameters() -> None:
    template = UriTemplate("search{?q,lang}")
    assert template.match("search?lang=en&q=a%20b&utm=x") == {"q": "a b", "lang": "en"}
    assert template.match("search") == {}
    assert template.match("search?q") == {"q": ""}
    assert template.match("search?q=1&q=2") == {"q": "1"}
    assert template.match("searching") is None


def test_query_continuation_after_a_literal_query() -> None:
    template = UriTemplate("list?fixed=yes{&page,size}")
    assert template.match("list?fixed=yes&page=2&size=10") == {"page": "2", "size": "10"}
    assert template.match("list?fixed=yes") == {}
    assert template.match("list?fixed=no&page=2") is None


def test_path_parameters() -> None:
    template = UriTemplate("img{;w,h}")
    assert template.match("img;w=10;h=20") == {"w": "10", "h": "20"}
    assert template.match("img;w;h=2") == {"w": "", "h": "2"}


def test_repeated_variable_must_agree() -> None:
    template = UriTemplate("{a}/x/{a}")
    assert template.match("1/x/1") == {"a": "1"}
    assert template.match("1/x/2") is None


def test_equality_and_text() -> None:
    assert UriTemplate("a/{b}") == UriTemplate("a/{b}")
    assert UriTemplate("a/{b}") != UriTemplate("a/{c}")
    assert len({UriTemplate("a/{b}"), UriTemplate("a/{b}")}) == 1
    assert str(UriTemplate("a/{b}")) == "a/{b}"
    assert repr(UriTemplate("a/{b}")) == "UriTemplate('a/{b}')"


def test_template_must_be_text() -> None:
    with pytest.raises(TypeError):
        UriTemplate(b"a/{b}")  # type: ignore[arg-type]


# Any Unicode text round-trips through the encoding operators; "safe" here only rules out
# the few cases RFC 6570 itself makes ambiguous (empty simple values, "%" after "+").
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
non_empty = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)
reserved_safe = st.text(
    string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+;= éü", min_size=1, max_size=12
)

# (template, strategy per variable, variables that may be left undefined). In a list of
# optional unnamed variables only the last may be missing, or matching could not tell
# which one was.
ROUND_TRIP_TEMPLATES: list[tuple[str, dict[str, st.SearchStrategy[str]], set[str]]] = [
    ("users/{id}", {"id": non_empty}, set()),
    ("users/{id}/posts/{post}", {"id": non_empty, "post": non_empty}, set()),
    ("map?{x,y}", {"x": non_empty, "y": non_empty}, set()),
    ("file:///{+path}", {"path": reserved_safe}, set()),
    (
        "x{/a,b}{;c,d}",
        {"a": any_text, "b": any_text, "c": any_text, "d": any_text},
        {"b", "c", "d"},
    ),
    ("doc{#frag}", {"frag": reserved_safe}, {"frag"}),
    ("files{/name}{;rev}", {"name": any_text, "rev": any_text}, {"name", "rev"}),
    ("q{.ext}", {"ext": any_text}, {"ext"}),
    (
        "search{?q,lang,page}",
        {"q": any_text, "lang": any_text, "page": any_text},
        {"q", "lang", "page"},
    ),
    ("a/{id}?fixed=1{&p,r}", {"id": non_empty, "p": any_text, "r": any_text}, {"p", "r"}),
]


@st.composite
def template_and_values(draw: st.DrawFn) -> tuple[UriTemplate, dict[str, str]]:
    text, strategies, optional = draw(st.sampled_from(ROUND_TRIP_TEMPLATES))
    values = {}
    for name, strategy in strategies.items():
        if name in optional and draw(st.booleans()):
            continue
        values[name] = draw(strategy)
    return UriTemplate(text), values


@given(template_and_values())
def test_match_inverts_expand(case: tuple[UriTemplate, dict[str, str]]) -> None:
    template, values = case
    uri = template.expand(values)
    assert template.match(uri) == values


@given(st.text(max_size=20))
def test_parsing_never_fails_unexpectedly(text: str) -> None:
    try:
        template = UriTemplate(text)
    except ValueError:
        return
    uri = template.expand(dict.fromkeys(template.variables, "v"))
    assert template.match(uri) is not None
