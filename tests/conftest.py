"""Shared fixtures: the official SDK's virtualenv (created on first use)."""

from sdk import sdk_python_fixture  # noqa: F401
