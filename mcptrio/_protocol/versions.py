"""Protocol revisions, eras and version negotiation (sans-IO)."""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "DEFAULT_HTTP_VERSION",
    "LATEST_LEGACY_VERSION",
    "LATEST_VERSION",
    "LEGACY_VERSIONS",
    "META_CLIENT_CAPABILITIES",
    "META_CLIENT_INFO",
    "META_LOG_LEVEL",
    "META_PROTOCOL_VERSION",
    "META_SERVER_INFO",
    "META_SUBSCRIPTION_ID",
    "MODERN_VERSIONS",
    "SUPPORTED_VERSIONS",
    "Era",
    "era_of",
    "negotiate_legacy_version",
    "supports_batches",
]

LEGACY_VERSIONS: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS: Final = ("2026-07-28",)
SUPPORTED_VERSIONS: Final = LEGACY_VERSIONS + MODERN_VERSIONS
LATEST_LEGACY_VERSION: Final = LEGACY_VERSIONS[-1]
LATEST_VERSION: Final = MODERN_VERSIONS[-1]
DEFAULT_HTTP_VERSION: Final = "2025-03-26"
"""What a server assumes when a legacy HTTP request carries no MCP-Protocol-Version."""

META_PROTOCOL_VERSION: Final = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_CAPABILITIES: Final = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO: Final = "io.modelcontextprotocol/clientInfo"
META_LOG_LEVEL: Final = "io.modelcontextprotocol/logLevel"
META_SERVER_INFO: Final = "io.modelcontextprotocol/serverInfo"
META_SUBSCRIPTION_ID: Final = "io.modelcontextprotocol/subscriptionId"


class Era(enum.Enum):
    """Which wire shape a request follows."""

    LEGACY = "legacy"
    """``initialize`` handshake, sessions, server-to-client requests (2024-11-05 .. 2025-11-25)."""
    MODERN = "modern"
    """Stateless, per-request ``_meta`` (2026-07-28)."""


def era_of(version: str) -> Era:
    """The era a protocol revision belongs to; unknown dated revisions after 2026 are modern."""
    if version in LEGACY_VERSIONS or version < MODERN_VERSIONS[0]:
        return Era.LEGACY
    return Era.MODERN


def negotiate_legacy_version(requested: str, supported: tuple[str, ...] = LEGACY_VERSIONS) -> str:
    """The version a server answers to ``initialize``: the requested one if supported,
    otherwise its latest legacy version (the client then decides whether to go on)."""
    if requested in supported:
        return requested
    return supported[-1]


def supports_batches(version: str | None) -> bool:
    """JSON-RPC batches were part of exactly one revision, 2025-03-26."""
    return version == "2025-03-26"
