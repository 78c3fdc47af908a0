"""TLS for the HTTP server: contexts built from :class:`TlsConfig`, reloaded in place.

Both HTTP implementations wrap each accepted socket with ``SSLContext.wrap_bio`` (our h11
adapter directly, Hypercorn through ``trio.SSLListener``), once per connection. The context
they are given is a :class:`ServerTls`' ``context``, whose ``wrap_bio`` hands the work to the
context built from the files read last. A reload therefore changes what new connections
get, while each open connection keeps the ``SSLObject`` (and certificate) it was made with:
no stream is dropped.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Sequence

import trio

from ..._ops.config import ConfigError, TlsConfig

__all__ = ["ServerTls", "client_ssl_context", "server_ssl_context"]

log = logging.getLogger("mcptrio.tls")

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def server_ssl_context(config: TlsConfig, *, alpn: Sequence[str]) -> ssl.SSLContext:
    """A server-side context from ``config``'s files, offering ``alpn`` protocols.

    Raises :class:`~mcptrio.ConfigError` naming the file when one cannot be read, does not
    hold what it should, or holds a key that does not match the certificate.
    """
    if config.certfile is None:
        raise ValueError("TLS is off: TlsConfig.certfile is not set")
    # Not create_default_context(): it would also trust the system's authorities for client
    # certificates, where mutual TLS must trust ``ca_certs`` alone.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[config.min_version]
    # RFC 9113 section 9.2.1: HTTP/2 over TLS must not use TLS compression.
    context.options |= ssl.OP_NO_COMPRESSION
    try:
        context.load_cert_chain(config.certfile, config.keyfile, config.password)
    except (OSError, ssl.SSLError) as exc:
        key = f" with key {config.keyfile!r}" if config.keyfile is not None else ""
        raise ConfigError(
            f"http.tls: cannot load the certificate {config.certfile!r}{key}: {_reason(exc)}"
        ) from exc
    if config.ca_certs is not None:
        try:
            context.load_verify_locations(cafile=config.ca_certs)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"http.tls.ca_certs: cannot load {config.ca_certs!r}: {_reason(exc)}"
            ) from exc
        context.verify_mode = (
            ssl.CERT_REQUIRED if config.client_cert_required else ssl.CERT_OPTIONAL
        )
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError) or exc.strerror is None:
        return str(exc)
    return exc.strerror


class _ReloadingContext(ssl.SSLContext):
    """An ``SSLContext`` whose connections are made by the context its owner loaded last."""

    owner: ServerTls

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return self.owner.current.wrap_bio(
            incoming,
            outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
            session=session,
        )


class ServerTls:
    """The TLS settings a running HTTP server hands to new connections.

    ``context`` is what the server wraps sockets with; :meth:`reload` re-reads the files
    of its :class:`TlsConfig` for the connections that come next.
    """

    def __init__(self, config: TlsConfig, *, alpn: Sequence[str]) -> None:
        self.config = config
        self._alpn = tuple(alpn)
        self._stamp = self._file_stamp()
        self.current = server_ssl_context(config, alpn=self._alpn)
        """The context new connections are made with."""
        self.reloads = 0
        """Successful reloads so far."""
        self.failed_reloads = 0
        """Reloads that failed (the files in force before were kept)."""
        context = _ReloadingContext(ssl.PROTOCOL_TLS_SERVER)
        context.owner = self
        self.context: ssl.SSLContext = context
        """Give this to the server: it makes each connection with :attr:`current`."""

    def _files(self) -> list[str]:
        c = self.config
        return [f for f in (c.certfile, c.keyfile, c.ca_certs) if f is not None]

    def _file_stamp(self) -> tuple[tuple[int, int, int] | None, ...]:
        stamp: list[tuple[int, int, int] | None] = []
        for name in self._files():
            try:
                st = os.stat(name)
            except OSError:
                stamp.append(None)
            else:
                stamp.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(stamp)

    def reload(self) -> bool:
        """Read the files again; new connections use them from now on.

        Returns whether that worked. On failure (a file missing, a key that does not match
        its certificate while a renewal is half written) the error is logged and the files
        in force are kept.
        """
        self._stamp = self._file_stamp()
        try:
            fresh = server_ssl_context(self.config, alpn=self._alpn)
        except ConfigError as exc:
            self.failed_reloads += 1
            log.error("TLS files not reloaded, keeping the ones in force: %s", exc)
            return False
        self.current = fresh
        self.reloads += 1
        log.info("TLS certificate reloaded from %s", self.config.certfile)
        return True

    def changed(self) -> bool:
        """Whether a file's modification time, size or inode differs from the last read."""
        return self._file_stamp() != self._stamp

    async def watch(self) -> None:
        """Reload whenever the files change, checking every ``watch_interval`` seconds.

        Returns at once when ``watch_interval`` is 0.
        """
        interval = self.config.watch_interval
        if interval <= 0:
            return
        while True:
            await trio.sleep(interval)
            if self.changed():
                self.reload()


def client_ssl_context(
    *,
    ca_certs: str | os.PathLike[str] | None = None,
    certfile: str | os.PathLike[str] | None = None,
    keyfile: str | os.PathLike[str] | None = None,
) -> ssl.SSLContext:
    """A client-side context that checks the server's certificate and host name.

    ``ca_certs`` replaces the system's certificate authorities; ``certfile`` is a PEM file
    with a client certificate, followed by its key unless ``keyfile`` is given. Raises
    :class:`~mcptrio.ConfigError` naming a file that cannot be used.
    """
    try:
        context = ssl.create_default_context(cafile=ca_certs)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"HttpClientConfig.ca_certs: cannot load {os.fspath(ca_certs or '')!r}: {_reason(exc)}"
        ) from exc
    if certfile is not None:
        try:
            context.load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as exc:
            key = f" with key {os.fspath(keyfile)!r}" if keyfile is not None else ""
            raise ConfigError(
                f"HttpClientConfig.client_cert: cannot load {os.fspath(certfile)!r}{key}:"
                f" {_reason(exc)}"
            ) from exc
    return context
