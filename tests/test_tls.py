"""HTTPS on both HTTP adapters, HTTP/2 on Hypercorn, certificate reload, mutual TLS.

Certificates come from trustme; servers listen on 127.0.0.1 port 0.
"""

from __future__ import annotations

import datetime
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio
import trio.testing
import trustme
from cryptography import x509
from node_tools import open_http_server
from sdk import SdkError, run_sdk_client

from mcptrio import (
    ConfigError,
    HttpClientConfig,
    HttpConfig,
    Server,
    ServerConfig,
    ServerTls,
    TlsConfig,
    load_config,
    open_client,
    open_http_transport,
    serve_http,
)
from mcptrio._app.cli import UsageError, _configured, _parser
from mcptrio._protocol.sse import SSEDecoder, SSEEvent
from mcptrio._server.http_endpoint import HttpServerInfo

ADAPTERS = ["h11", "hypercorn"]
ACCEPT = "application/json, text/event-stream"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}


# -- certificates ----------------------------------------------------------------------------


@attrs.frozen
class Pki:
    """A test CA, the files a server is configured with, and a client certificate."""

    ca: trustme.CA
    ca_file: Path
    certfile: Path
    keyfile: Path
    client_ca: trustme.CA
    client_ca_file: Path
    client_file: Path
    directory: Path

    def renew(self, **issue: Any) -> int:
        """Write a fresh server certificate over the configured files; its serial number."""
        cert = self.ca.issue_cert("127.0.0.1", "localhost", **issue)
        write_atomically(self.certfile, cert.cert_chain_pems)
        write_atomically(self.keyfile, [cert.private_key_pem])
        return serial_of(cert.cert_chain_pems[0].bytes())

    def tls(self, **fields: Any) -> TlsConfig:
        return TlsConfig(certfile=str(self.certfile), keyfile=str(self.keyfile), **fields)


def write_atomically(path: Path, blobs: list[trustme.Blob]) -> None:
    staging = path.with_suffix(".new")
    staging.write_bytes(b"".join(blob.bytes() for blob in blobs))
    os.replace(staging, path)


def serial_of(pem_or_der: bytes) -> int:
    if pem_or_der.startswith(b"-----"):
        return x509.load_pem_x509_certificate(pem_or_der).serial_number
    return x509.load_der_x509_certificate(pem_or_der).serial_number


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    client_ca = trustme.CA()
    made = Pki(
        ca=ca,
        ca_file=tmp_path / "ca.pem",
        certfile=tmp_path / "server.pem",
        keyfile=tmp_path / "server.key",
        client_ca=client_ca,
        client_ca_file=tmp_path / "client-ca.pem",
        client_file=tmp_path / "client.pem",
        directory=tmp_path,
    )
    ca.cert_pem.write_to_path(str(made.ca_file))
    client_ca.cert_pem.write_to_path(str(made.client_ca_file))
    made.renew()
    client_ca.issue_cert("client@example.com").private_key_and_cert_chain_pem.write_to_path(
        str(made.client_file)
    )
    return made


def client_config(**settings: Any) -> HttpClientConfig:
    """Our client's settings, paths given as they come."""
    return HttpClientConfig(
        **{k: str(v) if isinstance(v, Path) else v for k, v in settings.items()}
    )


def client_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    return context


# -- servers ---------------------------------------------------------------------------------


def make_server() -> Server:
    server = Server("tls-test", config=ServerConfig(shutdown_grace=2.0))
    release = trio.Event()

    @server.tool()
    async def echo(text: str) -> str:
        """Echo."""
        return text

    @server.tool()
    async def ticks(count: int, gap: float = 0.05) -> str:
        """Report progress ``count`` times, ``gap`` seconds apart."""
        from mcptrio import current_request

        ctx = current_request()
        for i in range(1, count + 1):
            await ctx.report_progress(i, count, f"tick {i}")
            await trio.sleep(gap)
        return f"ticked {count}"

    @server.tool()
    async def hold() -> str:
        """Return once the test releases it."""
        await release.wait()
        return "released"

    server.release = release  # type: ignore[attr-defined]
    return server


@asynccontextmanager
async def running(app: Server | None = None, **config: Any) -> AsyncIterator[HttpServerInfo]:
    async with trio.open_nursery() as nursery:
        info: HttpServerInfo = await nursery.start(
            serve_http, app or make_server(), HttpConfig(port=0, **config)
        )
        yield info
        nursery.cancel_scope.cancel()


async def peer_serial(url: str, pki: Pki) -> int:
    """The serial number of the certificate a new connection to ``url`` is shown."""
    address = httpx.URL(url)
    assert address.port is not None
    stream = await trio.open_ssl_over_tcp_stream(
        address.host, address.port, ssl_context=client_context(pki)
    )
    try:
        await stream.do_handshake()
        der = stream.getpeercert(binary_form=True)
        assert der is not None
        return serial_of(der)
    finally:
        await trio.aclose_forcefully(stream)


def messages(events: list[SSEEvent]) -> list[dict[str, Any]]:
    return [orjson.loads(e.data) for e in events if e.data]


async def raw_initialize(http: httpx.AsyncClient, url: str) -> dict[str, str]:
    response = await http.post(url, json=INIT, headers={"accept": ACCEPT})
    assert response.status_code == 200, response.text
    session = {
        "accept": ACCEPT,
        "mcp-session-id": response.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-11-25",
    }
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await http.post(url, json=note, headers=session)).status_code == 202
    return session


def call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": {"progressToken": request_id}},
    }


# -- configuration ---------------------------------------------------------------------------


def test_tls_config_is_checked_when_created() -> None:
    assert HttpConfig().tls == TlsConfig()
    assert TlsConfig().certfile is None
    with pytest.raises(ConfigError, match=r"TlsConfig.keyfile: needs certfile"):
        TlsConfig(keyfile="k.pem")
    with pytest.raises(ConfigError, match=r"TlsConfig.ca_certs: needs certfile"):
        TlsConfig(ca_certs="ca.pem")
    with pytest.raises(ConfigError, match=r"min_version: expected one of '1.2', '1.3'"):
        TlsConfig(certfile="c.pem", min_version="1.1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"watch_interval: must be >= 0"):
        TlsConfig(certfile="c.pem", watch_interval=-1)
    with pytest.raises(ConfigError, match=r"certfile: expected a non-empty str"):
        TlsConfig(certfile="")
    assert "hunter2" not in repr(TlsConfig(certfile="c.pem", password="hunter2"))


def test_tls_settings_load_from_toml_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "mcptrio.toml"
    path.write_text(
        '[http.tls]\ncertfile = "/etc/mcp/cert.pem"\nkeyfile = "/etc/mcp/key.pem"\n'
        'min_version = "1.3"\n'
    )
    config = load_config(path=path, env={"MCPTRIO_HTTP__TLS__CA_CERTS": "/etc/mcp/clients.pem"})
    assert config.http.tls == TlsConfig(
        certfile="/etc/mcp/cert.pem",
        keyfile="/etc/mcp/key.pem",
        ca_certs="/etc/mcp/clients.pem",
        min_version="1.3",
    )
    path.write_text('[http.tls]\nkeyfile = "/etc/mcp/key.pem"\n')
    with pytest.raises(ConfigError, match=r"http\.tls\.keyfile: needs certfile"):
        load_config(path=path, env={})


def test_command_line_flags_set_the_tls_section() -> None:
    args = _parser().parse_args(
        ["serve", "x.py", "--transport", "http", "--certfile", "c.pem", "--ca-certs", "ca.pem"]
    )
    config = _configured(args)
    assert config.http.tls.certfile == "c.pem"
    assert config.http.tls.keyfile is None
    assert config.http.tls.ca_certs == "ca.pem"
    args = _parser().parse_args(["serve", "x.py", "--keyfile", "k.pem"])
    with pytest.raises(UsageError, match=r"^--keyfile: needs certfile"):
        _configured(args)


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_unusable_files_fail_at_start_naming_the_file(adapter: str, pki: Pki) -> None:
    missing = TlsConfig(certfile=str(pki.directory / "nope.pem"))
    other_key = pki.directory / "other.key"
    pki.ca.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(other_key))
    mismatched = TlsConfig(certfile=str(pki.certfile), keyfile=str(other_key))
    bad_ca = TlsConfig(certfile=str(pki.certfile), keyfile=str(pki.keyfile), ca_certs="/nope")
    async with trio.open_nursery() as nursery:
        with pytest.raises(ConfigError, match=r"nope\.pem'.*No such file"):
            await nursery.start(serve_http, make_server(), HttpConfig(port=0, tls=missing))
        with pytest.raises(ConfigError, match=r"other\.key'.*KEY_VALUES_MISMATCH"):
            await nursery.start(
                serve_http, make_server(), HttpConfig(port=0, tls=mismatched, server=adapter)
            )
        with pytest.raises(ConfigError, match=r"ca_certs: cannot load '/nope'"):
            await nursery.start(serve_http, make_server(), HttpConfig(port=0, tls=bad_ca))


# -- our client over HTTPS -------------------------------------------------------------------


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_our_client_over_https(adapter: str, mode: Any, pki: Pki) -> None:
    async with running(tls=pki.tls(), server=adapter) as info:
        assert info.url.startswith("https://127.0.0.1:")
        assert info.url.endswith("/mcp")
        assert info.tls is not None
        with trio.fail_after(20):
            async with (
                open_http_transport(
                    info.url, config=client_config(ca_certs=pki.ca_file)
                ) as transport,
                open_client(transport, mode=mode) as client,
            ):
                result = await client.call_tool("echo", {"text": "over tls"})
                assert result.content[0].text == "over tls"  # type: ignore[union-attr]
                progress: list[float] = []

                async def on_progress(value: float, total: float | None, msg: str | None) -> None:
                    progress.append(value)

                done = await client.call_tool(
                    "ticks", {"count": 3, "gap": 0.01}, on_progress=on_progress
                )
                assert done.content[0].text == "ticked 3"  # type: ignore[union-attr]
                assert progress == [1, 2, 3]


# -- mutual TLS ------------------------------------------------------------------------------


async def echo_over(url: str, **settings: Any) -> str:
    with trio.fail_after(20):
        async with (
            open_http_transport(url, config=client_config(**settings)) as t,
            open_client(t, mode="legacy") as client,
        ):
            result = await client.call_tool("echo", {"text": "hello"})
            text = result.content[0].text  # type: ignore[union-attr]
            assert isinstance(text, str)
            return text


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_mutual_tls_needs_a_good_client_certificate(adapter: str, pki: Pki) -> None:
    stranger = pki.directory / "stranger.pem"
    pki.ca.issue_cert("stranger").private_key_and_cert_chain_pem.write_to_path(str(stranger))
    tls = pki.tls(ca_certs=str(pki.client_ca_file))
    async with running(tls=tls, server=adapter) as info:
        assert await echo_over(info.url, ca_certs=pki.ca_file, client_cert=pki.client_file) == (
            "hello"
        )
        for refused in ({}, {"client_cert": stranger}):
            with pytest.raises(Exception) as error:
                await echo_over(info.url, ca_certs=pki.ca_file, **refused)
            text = str(error.value)
            assert "could not send the initialize request" in text, text
            assert "requires a client certificate" in text, text
        # The server keeps serving clients that show a good certificate.
        assert await echo_over(info.url, ca_certs=pki.ca_file, client_cert=pki.client_file) == (
            "hello"
        )


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_optional_client_certificates(adapter: str, pki: Pki) -> None:
    stranger = pki.directory / "stranger.pem"
    pki.ca.issue_cert("stranger").private_key_and_cert_chain_pem.write_to_path(str(stranger))
    tls = pki.tls(ca_certs=str(pki.client_ca_file), client_cert_required=False)
    async with running(tls=tls, server=adapter) as info:
        assert await echo_over(info.url, ca_certs=pki.ca_file) == "hello"
        # The certificate and its key in files of their own.
        other = pki.client_ca.issue_cert("other@example.com")
        other.cert_chain_pems[0].write_to_path(str(pki.directory / "other.crt"))
        other.private_key_pem.write_to_path(str(pki.directory / "other.key"))
        assert await echo_over(
            info.url,
            ca_certs=pki.ca_file,
            client_cert=pki.directory / "other.crt",
            client_key=pki.directory / "other.key",
        ) == ("hello")
        with pytest.raises(Exception, match="requires a client certificate"):
            await echo_over(info.url, ca_certs=pki.ca_file, client_cert=stranger)


# -- certificates our client refuses ---------------------------------------------------------


@pytest.mark.parametrize(
    ("issue", "reason"),
    [
        (
            {"not_after": datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)},
            "certificate has expired",
        ),
        ({"identities": ("mcp.example.com",)}, "IP address mismatch"),
        ({"ca": "other"}, "unable to get local issuer certificate"),
    ],
    ids=["expired", "wrong-host", "unknown-ca"],
)
async def test_our_client_refuses_a_bad_server_certificate(
    issue: dict[str, Any], reason: str, pki: Pki
) -> None:
    identities = issue.pop("identities", ("127.0.0.1",))
    ca = trustme.CA() if issue.pop("ca", None) else pki.ca
    cert = ca.issue_cert(*identities, **issue)
    write_atomically(pki.certfile, cert.cert_chain_pems)
    write_atomically(pki.keyfile, [cert.private_key_pem])
    async with running(tls=pki.tls()) as info:
        with pytest.raises(Exception) as error:
            await echo_over(info.url, ca_certs=pki.ca_file)
        text = str(error.value)
        assert f"could not send the initialize request (id 1) to the MCP server at {info.url}" in (
            text
        ), text
        assert "CERTIFICATE_VERIFY_FAILED" in text, text
        assert reason in text, text
        # Without a CA bundle the system's authorities are used, which know no test CA.
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            await echo_over(info.url)


async def test_client_tls_options_do_not_mix_with_a_client_of_ones_own() -> None:
    options: dict[str, Any]
    for options in ({"ca_certs": "ca.pem"}, {"client_cert": "c.pem"}, {"http2": True}):
        async with httpx.AsyncClient() as http:
            with pytest.raises(ValueError, match="configure that client instead"):
                async with open_http_transport(
                    "https://127.0.0.1:1/mcp", http_client=http, config=client_config(**options)
                ):
                    pass  # pragma: no cover
    with pytest.raises(ConfigError, match="client_key: needs client_cert"):
        HttpClientConfig(client_key="k.pem")
    with pytest.raises(ConfigError, match=r"client_cert: cannot load '/nope\.pem'.*No such file"):
        async with open_http_transport(
            "https://127.0.0.1:1/mcp", config=client_config(client_cert="/nope.pem")
        ):
            pass  # pragma: no cover


# -- certificate reload ----------------------------------------------------------------------


def connection_serial(response: httpx.Response) -> int:
    """The serial of the certificate the connection carrying ``response`` was made with."""
    ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True)
    assert der is not None
    return serial_of(der)


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_reload_serves_new_connections_and_keeps_open_streams(adapter: str, pki: Pki) -> None:
    app = make_server()
    tls = pki.tls(watch_interval=0)
    async with (
        running(app, tls=tls, server=adapter) as info,
        httpx.AsyncClient(verify=client_context(pki), timeout=20) as http,
    ):
        assert info.tls is not None
        old = await peer_serial(info.url, pki)
        session = await raw_initialize(http, info.url)
        decoder = SSEDecoder()
        seen: list[SSEEvent] = []
        with trio.fail_after(20):
            async with http.stream(
                "POST", info.url, json=call(5, "hold", {}), headers=session
            ) as held:
                chunks = held.aiter_raw()
                seen += decoder.feed(await chunks.__anext__())  # the priming event
                assert connection_serial(held) == old

                new = pki.renew()
                assert new != old
                assert info.tls.reload() is True
                assert info.tls.reloads == 1
                assert await peer_serial(info.url, pki) == new
                async with httpx.AsyncClient(verify=client_context(pki), timeout=20) as fresh:
                    answer = await fresh.post(
                        info.url, json=call(6, "echo", {"text": "new"}), headers=session
                    )
                    assert connection_serial(answer) == new
                    assert (
                        messages(decoder.feed(answer.content))[-1]["result"]["content"][0]["text"]
                        == "new"
                    )

                # The stream opened before the reload is still there and ends normally.
                app.release.set()  # type: ignore[attr-defined]
                async for chunk in chunks:
                    seen += decoder.feed(chunk)
        result = messages(seen)[-1]
        assert result["id"] == 5
        assert result["result"]["content"][0]["text"] == "released"


async def handshake_serial(tls: ServerTls, pki: Pki) -> int:
    """Handshake over memory streams with ``tls.context``; the served certificate's serial."""
    client_raw, server_raw = trio.testing.memory_stream_pair()
    server = trio.SSLStream(server_raw, tls.context, server_side=True)
    client = trio.SSLStream(client_raw, client_context(pki), server_hostname="127.0.0.1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        await client.do_handshake()
    der = client.getpeercert(binary_form=True)
    assert der is not None
    return serial_of(der)


async def test_changed_files_are_reloaded(pki: Pki, autojump_clock: trio.testing.MockClock) -> None:
    tls = ServerTls(pki.tls(watch_interval=2.0), alpn=("http/1.1",))
    first = await handshake_serial(tls, pki)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tls.watch)
        await trio.sleep(5)
        assert (tls.reloads, tls.failed_reloads) == (0, 0)
        renewed = pki.renew()
        await trio.sleep(2.5)
        assert (tls.reloads, tls.failed_reloads) == (1, 0)
        assert await handshake_serial(tls, pki) == renewed != first

        # A renewal caught half written (the new key, the old certificate) is not taken:
        # the files in force stay, and the next change is tried again.
        cert = pki.ca.issue_cert("127.0.0.1")
        write_atomically(pki.keyfile, [cert.private_key_pem])
        await trio.sleep(2.5)
        assert (tls.reloads, tls.failed_reloads) == (1, 1)
        assert await handshake_serial(tls, pki) == renewed
        await trio.sleep(10)
        assert tls.failed_reloads == 1  # not retried while nothing changes
        write_atomically(pki.certfile, cert.cert_chain_pems)
        await trio.sleep(2.5)
        assert (tls.reloads, tls.failed_reloads) == (2, 1)
        assert await handshake_serial(tls, pki) == serial_of(cert.cert_chain_pems[0].bytes())
        nursery.cancel_scope.cancel()


async def test_no_watching_when_the_interval_is_zero(
    pki: Pki, autojump_clock: trio.testing.MockClock
) -> None:
    tls = ServerTls(pki.tls(watch_interval=0), alpn=())
    with trio.fail_after(1):
        await tls.watch()  # returns at once
    pki.renew()
    assert tls.changed()


async def test_command_line_serves_https_and_reloads_on_sighup(pki: Pki) -> None:
    command = [
        *[sys.executable, "-m", "mcptrio", "serve", "examples/everything.py"],
        *["--transport", "http", "--port", "0"],
        *["--certfile", str(pki.certfile), "--keyfile", str(pki.keyfile)],
    ]
    with trio.fail_after(60):
        async with open_http_server(command) as server:
            assert server.url.startswith("https://127.0.0.1:")
            before = await peer_serial(server.url, pki)
            renewed = pki.renew()
            server.process.send_signal(signal.SIGHUP)
            # The server is another process: the line it prints is the only news of it.
            while "TLS certificate reloaded" not in server.output():  # noqa: ASYNC110
                await trio.sleep(0.05)
            assert await peer_serial(server.url, pki) == renewed != before
            # SIGHUP reloads; it does not stop the server.
            assert server.process.returncode is None
            async with (
                open_http_transport(
                    server.url, config=client_config(ca_certs=pki.ca_file)
                ) as transport,
                open_client(transport) as client,
            ):
                assert (await client.list_tools()).tools


# -- HTTP/2 (Hypercorn) ----------------------------------------------------------------------


def record_connections(transport: Any) -> list[tuple[str, int]]:
    """(HTTP version, connection identity) of every response the transport receives."""
    seen: list[tuple[str, int]] = []

    async def hook(response: httpx.Response) -> None:
        seen.append((response.http_version, id(response.extensions["network_stream"])))

    # The transport's own httpx client: the one open_http_transport made from its config.
    transport._client.event_hooks["response"].append(hook)
    return seen


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("wire", ["tls", "h2c"])
async def test_http2_many_concurrent_requests_on_one_connection(
    wire: str, mode: Any, pki: Pki
) -> None:
    tls = pki.tls() if wire == "tls" else TlsConfig()
    async with running(tls=tls, server="hypercorn") as info:
        assert info.url.startswith("https://" if wire == "tls" else "http://")
        options: dict[str, Any] = {"ca_certs": pki.ca_file} if wire == "tls" else {}
        config = client_config(http2=True, **options)
        with trio.fail_after(30):
            async with open_http_transport(info.url, config=config) as transport:
                seen = record_connections(transport)
                async with open_client(transport, mode=mode) as client:
                    answers: dict[int, str] = {}

                    progress: dict[int, list[float]] = {}

                    async def one(i: int) -> None:
                        async def on_progress(value: float, *_: Any) -> None:
                            progress.setdefault(i, []).append(value)

                        # Progress makes each answer an SSE stream of its own.
                        result = await client.call_tool(
                            "ticks", {"count": 2, "gap": 0.02}, on_progress=on_progress
                        )
                        answers[i] = result.content[0].text  # type: ignore[union-attr]

                    async with trio.open_nursery() as nursery:
                        for i in range(40):
                            nursery.start_soon(one, i)
                    assert answers == dict.fromkeys(range(40), "ticked 2")
                    assert progress == {i: [1, 2] for i in range(40)}
        assert len(seen) >= 40
        assert {version for version, _ in seen} == {"HTTP/2"}
        assert len({connection for _, connection in seen}) == 1


async def test_http2_is_not_offered_by_the_h11_adapter(pki: Pki) -> None:
    async with running(tls=pki.tls(), server="h11") as info:
        config = client_config(http2=True, ca_certs=pki.ca_file)
        async with open_http_transport(info.url, config=config) as transport:
            seen = record_connections(transport)
            async with open_client(transport, mode="legacy") as client:
                await client.call_tool("echo", {"text": "x"})
        assert {version for version, _ in seen} == {"HTTP/1.1"}


def h2_client(wire: str, pki: Pki) -> httpx.AsyncClient:
    if wire == "tls":
        return httpx.AsyncClient(http2=True, verify=client_context(pki), timeout=20)
    return httpx.AsyncClient(http1=False, http2=True, timeout=20)


@pytest.mark.parametrize("wire", ["tls", "h2c"])
async def test_http2_cut_stream_resumes_with_every_event_once(wire: str, pki: Pki) -> None:
    tls = pki.tls() if wire == "tls" else TlsConfig()
    async with running(tls=tls, server="hypercorn") as info, h2_client(wire, pki) as http:
        session = await raw_initialize(http, info.url)
        seen: list[SSEEvent] = []
        decoder = SSEDecoder()
        with trio.fail_after(20):
            async with http.stream(
                "POST", info.url, json=call(7, "ticks", {"count": 6, "gap": 0.1}), headers=session
            ) as response:
                assert response.http_version == "HTTP/2"
                async for chunk in response.aiter_raw():
                    seen.extend(decoder.feed(chunk))
                    if sum(1 for e in seen if e.data) >= 2:
                        break  # resets this stream; the connection stays
            last_id = [e for e in seen if e.id][-1].id
            assert last_id is not None
            resumed = await http.get(info.url, headers={**session, "last-event-id": last_id})
        assert resumed.status_code == 200
        assert resumed.http_version == "HTTP/2"
        after = messages(SSEDecoder().feed(resumed.content))
        everything = messages(seen) + after
        progress = [m["params"]["progress"] for m in everything if m.get("method")]
        assert progress == [1, 2, 3, 4, 5, 6]
        assert everything[-1]["result"]["content"][0]["text"] == "ticked 6"


@pytest.mark.parametrize("wire", ["tls", "h2c"])
async def test_http2_budgets_count_streams(wire: str, pki: Pki) -> None:
    """The request and stream budgets count HTTP/2 streams, all on one TCP connection."""
    tls = pki.tls() if wire == "tls" else TlsConfig()
    limits = {"max_in_flight_requests": 1, "max_streams": 2}
    async with (
        running(tls=tls, server="hypercorn", **limits) as info,
        h2_client(wire, pki) as http,
    ):
        health = info.url.removesuffix("/mcp") + "/health"
        session = await raw_initialize(http, info.url)
        with trio.fail_after(20):
            async with http.stream(
                "POST", info.url, json=call(300, "hold", {}), headers=session
            ) as held:
                await held.aiter_raw().__anext__()
                refused = await http.post(
                    info.url, json=call(301, "echo", {"text": "x"}), headers=session
                )
                assert refused.http_version == "HTTP/2"
                assert refused.status_code == 503
                assert "requests in flight" in refused.json()["error"]["message"]
                async with http.stream("GET", info.url, headers=session) as listening:
                    assert listening.status_code == 200
                    async with http.stream("GET", info.url.removesuffix("/mcp") + "/sse") as legacy:
                        assert legacy.status_code == 200
                        over = await http.get(info.url.removesuffix("/mcp") + "/sse")
                        assert over.status_code == 503
                        assert "max_streams" in over.text
                        # Spent budgets leave the health check answering.
                        assert (await http.get(health)).status_code == 200
                    assert listening.http_version == "HTTP/2"


# -- the official SDK's client over HTTPS ----------------------------------------------------


@pytest.mark.interop
@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_sdk_client_over_https(sdk_python: Path, adapter: str, mode: str, pki: Pki) -> None:
    from examples import everything

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            config = HttpConfig(port=0, server=adapter, tls=pki.tls())
            info: HttpServerInfo = await nursery.start(serve_http, everything.server, config)
            assert info.url.startswith("https://")
            # The SDK's HTTP client trusts the CA bundle SSL_CERT_FILE names.
            trust = {"SSL_CERT_FILE": str(pki.ca_file)}
            report = await run_sdk_client(sdk_python, url=info.url, mode=mode, env=trust)
            if mode == "legacy":
                # Without it the test CA is unknown and the SDK cannot connect.
                with pytest.raises(SdkError, match="could not connect"):
                    await run_sdk_client(sdk_python, url=info.url, mode=mode, only=["initialize"])
            nursery.cancel_scope.cancel()
    expected = "2026-07-28" if mode == "2026-07-28" else "2025-11-25"
    assert report.protocol_version == expected
    failures = {name: check.detail for name, check in report.items() if check.ok is False}
    assert not failures, failures
    passed = [name for name, check in report.items() if check.ok]
    assert len(passed) >= 25, report
    assert {"initialize", "tools_list", "test_tool_with_progress", "test_sampling"} <= set(passed)


async def test_h2c_upgrade_of_a_request_without_a_body() -> None:
    """Hypercorn also switches a cleartext connection with ``Upgrade: h2c`` (no body)."""
    import h2.config
    import h2.connection
    import h2.events

    async with running(server="hypercorn") as info:
        address = httpx.URL(info.url)
        assert address.port is not None
        h2conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        settings = h2conn.initiate_upgrade_connection()
        stream = await trio.open_tcp_stream(address.host, address.port)
        async with stream:
            head = (
                f"GET /health HTTP/1.1\r\nHost: {address.host}:{address.port}\r\n"
                "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                f"HTTP2-Settings: {settings.decode()}\r\n\r\n"
            )
            await stream.send_all(head.encode())
            await stream.send_all(h2conn.data_to_send())
            received = b""
            with trio.fail_after(10):
                while b"\r\n\r\n" not in received:
                    received += await stream.receive_some()
                switching, _, rest = received.partition(b"\r\n\r\n")
                assert switching.startswith(b"HTTP/1.1 101"), switching
                status = body = None
                events = h2conn.receive_data(rest)
                while True:
                    for event in events:
                        if isinstance(event, h2.events.ResponseReceived):
                            assert event.stream_id == 1  # the upgraded request
                            status = dict(event.headers)[b":status"]
                        elif isinstance(event, h2.events.DataReceived):
                            body = (body or b"") + event.data
                            h2conn.acknowledge_received_data(len(event.data), event.stream_id)
                        elif isinstance(event, h2.events.StreamEnded):
                            assert status == b"200"
                            assert body is not None
                            return
                    await stream.send_all(h2conn.data_to_send())
                    events = h2conn.receive_data(await stream.receive_some())


@pytest.fixture
def clock() -> trio.testing.MockClock:
    """Virtual time that jumps once everything has been idle a few (real) milliseconds."""
    return trio.testing.MockClock(autojump_threshold=0.02)


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_a_client_that_never_finishes_its_handshake_is_dropped(
    adapter: str, pki: Pki, clock: trio.testing.MockClock
) -> None:
    async with running(tls=pki.tls(), server=adapter, header_timeout=10.0) as info:
        address = httpx.URL(info.url)
        assert address.port is not None
        stream = await trio.open_tcp_stream(address.host, address.port)
        async with stream:
            began = trio.current_time()
            await stream.send_all(b"\x16\x03\x01")  # the start of a ClientHello, no more
            with trio.fail_after(60):
                while await stream.receive_some():
                    pass  # an alert, perhaps; then the server closes
            assert trio.current_time() - began >= 10.0
        # The server still serves well-behaved clients.
        assert await echo_over(info.url, ca_certs=pki.ca_file) == "hello"


@pytest.mark.parametrize("wire", ["tls", "h2c"])
async def test_http2_our_client_resumes_a_stream_the_server_closed(wire: str, pki: Pki) -> None:
    from examples import everything

    tls = pki.tls() if wire == "tls" else TlsConfig()
    options: dict[str, Any] = {"ca_certs": pki.ca_file} if wire == "tls" else {}
    config = HttpConfig(port=0, server="hypercorn", sse_retry_ms=20, tls=tls)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            info: HttpServerInfo = await nursery.start(serve_http, everything.server, config)
            transport_config = client_config(http2=True, **options)
            async with open_http_transport(info.url, config=transport_config) as transport:
                seen = record_connections(transport)
                async with open_client(transport, mode="legacy") as client:
                    # The tool closes its own SSE stream before answering (SEP-1699): the
                    # client resumes it with Last-Event-ID on the same HTTP/2 connection.
                    result = await client.call_tool("test_reconnection", {})
                    text = result.content[0].text  # type: ignore[union-attr]
                    assert "reconnected" in text
                    assert transport.statistics().resumptions >= 1
            nursery.cancel_scope.cancel()
    assert {version for version, _ in seen} == {"HTTP/2"}
    assert len({connection for _, connection in seen}) == 1
