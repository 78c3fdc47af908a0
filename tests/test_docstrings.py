from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcptrio._server.docstrings import Docstring, parse_docstring


def test_empty_and_none() -> None:
    assert parse_docstring(None) == Docstring()
    assert parse_docstring("   \n  ") == Docstring()
    assert parse_docstring("") == Docstring(summary=None, params={}, returns=None)


def test_summary_only_uses_cleandoc_semantics() -> None:
    doc = """First line.

        Second paragraph,
          indented more.
        """
    assert parse_docstring(doc).summary == "First line.\n\nSecond paragraph,\n  indented more."


def test_google_style() -> None:
    def add(a: int, b: int, *rest: int, **options: str) -> int:
        """Add numbers.

        Longer explanation that
        spans lines.

        Args:
            a (int): The first
                number.
            b: The second number.
            *rest: More numbers.
            **options: Keyword options.

        Returns:
            int: The sum of
            all numbers.

        Raises:
            ValueError: When something is off.
        """
        return a + b

    parsed = parse_docstring(add.__doc__)
    assert parsed.params == {
        "a": "The first number.",
        "b": "The second number.",
        "rest": "More numbers.",
        "options": "Keyword options.",
    }
    assert parsed.returns == "The sum of all numbers."
    # Only the parameter and returns sections leave the description.
    assert parsed.summary == (
        "Add numbers.\n\nLonger explanation that\nspans lines.\n\n"
        "Raises:\n    ValueError: When something is off."
    )


@pytest.mark.parametrize("header", ["Args", "Arguments", "Parameters", "Keyword Args"])
def test_google_header_spellings(header: str) -> None:
    doc = f"Do it.\n\n{header}:\n    x: The x.\n"
    assert parse_docstring(doc) == Docstring(summary="Do it.", params={"x": "The x."})


def test_google_paragraphs_and_lists_inside_a_description() -> None:
    doc = textwrap.dedent(
        """\
        Pick.

        Args:
            mode: One of:
                - fast: quick
                - slow: careful

                Defaults to fast.
        """
    )
    assert parse_docstring(doc).params["mode"] == (
        "One of:\n- fast: quick\n- slow: careful\n\nDefaults to fast."
    )


def test_sphinx_style() -> None:
    doc = """Fetch a page.

    :param url: The address
        to fetch.
    :param int timeout: Seconds to wait.
    :type url: str
    :raises IOError: When offline.
    :returns: The body.
    :rtype: str
    """
    parsed = parse_docstring(doc)
    assert parsed.params == {"url": "The address to fetch.", "timeout": "Seconds to wait."}
    assert parsed.returns == "The body."
    assert parsed.summary == "Fetch a page."


def test_numpy_style() -> None:
    doc = """Locate a point.

    Some more words.

    Parameters
    ----------
    x, y : float
        Coordinates
        of the point.
    label : str, optional
        A label.
    flag : bool

    Returns
    -------
    str
        Where it is.

    Notes
    -----
    Nothing special.
    """
    parsed = parse_docstring(doc)
    assert parsed.params == {
        "x": "Coordinates of the point.",
        "y": "Coordinates of the point.",
        "label": "A label.",
    }
    assert parsed.returns == "Where it is."
    assert parsed.summary == "Locate a point.\n\nSome more words.\n\nNotes\n-----\nNothing special."


def test_attributes_section_documents_class_fields() -> None:
    doc = "A point.\n\nAttributes:\n    x: Horizontal.\n    y: Vertical.\n"
    assert parse_docstring(doc).params == {"x": "Horizontal.", "y": "Vertical."}


def test_section_words_inside_text_are_not_headers() -> None:
    doc = "Returns the args: all of them.\n\nArgs are described elsewhere."
    parsed = parse_docstring(doc)
    assert parsed.summary == doc
    assert parsed.params == {}
    assert parsed.returns is None


def test_undocumented_entries_are_dropped() -> None:
    doc = "S.\n\nArgs:\n    x:\n    y: Why.\n"
    assert parse_docstring(doc).params == {"y": "Why."}


_LOWER = "abcdefghijklmnopqrstuvwxyz"
names = st.builds(
    str.__add__, st.sampled_from(_LOWER + "_"), st.text(_LOWER + "0123456789_", max_size=10)
)
words = st.builds(
    str.__add__,
    st.sampled_from(_LOWER + _LOWER.upper()),
    st.text(_LOWER + _LOWER.upper() + "0123456789,.", max_size=8),
)
descriptions = st.lists(words, min_size=1, max_size=12).map(" ".join)
summaries = st.lists(descriptions, min_size=1, max_size=3).map("\n\n".join)


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width) or [text]


@given(
    summary=summaries,
    params=st.dictionaries(names, descriptions, max_size=5),
    returns=st.none() | descriptions,
    style=st.sampled_from(["google", "sphinx", "numpy"]),
    width=st.integers(20, 80),
    indent=st.sampled_from(["", "    ", "        "]),
)
def test_rendered_docstrings_parse_back(
    summary: str,
    params: dict[str, str],
    returns: str | None,
    style: str,
    width: int,
    indent: str,
) -> None:
    lines = [*summary.split("\n"), ""]
    if style == "google":
        if params:
            lines.append("Args:")
            for name, text in params.items():
                first, *rest = _wrap(f"{name} (int): {text}", width)
                lines += ["    " + first] + ["        " + r for r in rest]
            lines.append("")
        if returns is not None:
            lines += ["Returns:"] + ["    " + r for r in _wrap(returns, width)]
    elif style == "sphinx":
        for name, text in params.items():
            first, *rest = _wrap(f":param {name}: {text}", width)
            lines += [first] + ["    " + r for r in rest]
        if returns is not None:
            first, *rest = _wrap(f":returns: {returns}", width)
            lines += [first] + ["    " + r for r in rest]
    else:
        if params:
            lines += ["Parameters", "----------"]
            for name, text in params.items():
                lines += [f"{name} : int"] + ["    " + r for r in _wrap(text, width)]
            lines.append("")
        if returns is not None:
            lines += ["Returns", "-------", "int"] + ["    " + r for r in _wrap(returns, width)]
    # The first line of a docstring sits right after the quotes, unindented.
    doc = lines[0] + "\n" + "\n".join(indent + line if line else "" for line in lines[1:])
    parsed = parse_docstring(doc)
    assert parsed.summary == summary
    assert dict(parsed.params) == params
    assert parsed.returns == returns
