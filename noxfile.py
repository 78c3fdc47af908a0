"""Developer tasks: ``nox -s tests lint typecheck docs bench load``."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

DEV = ".[dev]"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (the same command CI runs)."""
    session.install("-e", DEV)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("-e", DEV)
    session.run("ruff", "check", "mcptrio", "tests", "examples", "bench", "noxfile.py")
    session.run("ruff", "format", "--check", "mcptrio", "tests", "examples", "bench", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", DEV)
    session.run("mypy", "--strict", "mcptrio")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx docs with warnings as errors."""
    session.install("-e", DEV)
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: ours next to a baseline measured in the same run.

    ``python -m bench`` installs wrk (the HTTP load generator, Debian package ``wrk``) with apt
    when it is missing. Arguments go to ``python -m bench``, e.g. ``nox -s bench -- --only http``.
    """
    session.install("-e", DEV)
    session.run("python", "-m", "bench", *session.posargs)


@nox.session
def load(session: nox.Session) -> None:
    """1,000 SDK-like clients for 60 s against one server process (not part of the tests).

    Each holds its GET stream and calls a tool every 5 s; prints errors, latency
    percentiles per operation, requests/s and the server's memory. Arguments go to
    ``python -m bench.load``, e.g. ``nox -s load -- --clients 300 --duration 20``.
    """
    session.install("-e", DEV)
    session.run("python", "-m", "bench.load", *session.posargs)


@nox.session
def conformance(session: nox.Session) -> None:
    """The official MCP conformance suite against our HTTP server and our client (the
    client leg includes every authorization scenario), every requirement set.

    Needs npm; Node 22 and the pinned suite are installed into .cache/ on first use.
    """
    session.install("-e", DEV)
    tests = ["tests/test_conformance.py", "tests/test_conformance_client.py"]
    session.run("python", "-m", "pytest", *tests, *session.posargs)


@nox.session
def inspector(session: nox.Session) -> None:
    """The official MCP Inspector CLI lists and calls our tools over HTTP and stdio (needs npm)."""
    session.install("-e", DEV)
    session.run("python", "-m", "pytest", "tests/test_inspector.py", *session.posargs)
