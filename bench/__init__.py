"""Benchmarks of mcptrio side by side with the official MCP Python SDK and raw HTTP servers.

Run ``python -m bench`` (or ``nox -s bench``); ``python -m bench --help`` lists the options.
Every benchmark measures ours and its baseline in the same run, alternating round by round,
and reports medians; no figure here is a pass/fail threshold.
"""
