"""``medcodec serve``: DICOMweb, ZIP archives and a C-STORE SCP over a store (uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import threading
import weakref
from collections.abc import Iterator

import click

from ..service.connections import (
    BODY_TIMEOUT,
    HEADER_TIMEOUT,
    SEND_TIMEOUT,
    connection_budget,
    limit_malloc_arenas,
    raise_open_files_limit,
    with_header_timeout,
)
from ..service.settings import DEFAULT_PORT, DIMSE_TIMEOUT
from ._common import EXIT_BUG, handle_errors


@click.command()
@click.option(
    "--store", "store", required=True, help="Store folder or fsspec URL, made by `medcodec ingest` (see --create)."
)
@click.option(
    "--create",
    is_flag=True,
    help="Create STORE, empty, when it does not exist: a store filled by STOW-RS or C-STORE only. Without it "
    "a missing store (a typo) is an error.",
)
@click.option("--catalog", default=None, help="Catalog URL (SQLAlchemy) instead of the store's SQLite file.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; off loopback needs --token.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    default=None,
    help="Bearer token required on every request but /, /health and the viewer's static files (no patient "
    "data) [default: $MEDCODEC_TOKEN].",
)
@click.option(
    "--dimse-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Also run a DICOM SCP here: C-STORE in, C-FIND / C-GET / C-MOVE out.",
)
@click.option("--ae-title", default="MEDCODEC", show_default=True, help="AE title of the DICOM SCP.")
@click.option(
    "--dimse-peer",
    "dimse_peers",
    multiple=True,
    metavar="AE=HOST:PORT",
    help="A DICOM peer (repeatable): a C-MOVE destination and, off loopback, a caller allowed to query/retrieve.",
)
@click.option(
    "--max-upload",
    default=512,
    show_default=True,
    type=click.IntRange(min=1),
    help="STOW-RS body limit, MB (413 past it).",
)
@click.option(
    "--max-results",
    default=10_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most results in one QIDO-RS answer, limit given or not (more: a Warning says so; page with offset).",
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(min=1),
    help="Threads for live work: catalog and stored files, and the encoding with --processes 0 [default: all cores].",
)
@click.option(
    "--processes",
    default=None,
    type=click.IntRange(min=0),
    help="Encoder processes for live archives, 0 = threads only [default: all cores when more than one].",
)
@click.option(
    "--max-live",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="Live archives encoded at once (more wait).",
)
@click.option(
    "--read-ahead",
    default=None,
    type=click.IntRange(min=1),
    help="MB that live archives and WADO-RS answers together may hold read or encoded ahead of what they "
    "send; past it each keeps one instance in flight [default: 256].",
)
@click.option(
    "--no-precompute",
    is_flag=True,
    help="Do not pre-compute the studies that STOW-RS / C-STORE bring instances to (they stay live until "
    "`medcodec ingest --refresh`). Without it the server also takes, at start, the received studies a "
    "stop left un-pre-computed.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="Origin whose browser pages may call the server (a DICOMweb viewer served elsewhere, e.g. "
    "http://localhost:3000; '*' for any); repeatable [default: $MEDCODEC_CORS_ORIGINS, comma-separated, or none].",
)
@click.option("--tls-cert", default=None, help="PEM certificate (chain): serve HTTPS (and DICOM TLS). Needs --tls-key.")
@click.option("--tls-key", default=None, help="PEM private key of --tls-cert.")
@click.option(
    "--dimse-tls-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Also run the DICOM SCP over TLS here (2762 usually; BCP 195, TLS 1.2+), with --tls-cert / --tls-key.",
)
@click.option(
    "--dimse-tls-ca",
    default=None,
    help="PEM CA certificates: callers on --dimse-tls-port must present a certificate they signed (mutual "
    "TLS), C-MOVE destinations over TLS are verified against them [default: any caller; the system's CAs].",
)
@click.option(
    "--dimse-tls-peer",
    "dimse_tls_peers",
    multiple=True,
    metavar="AE=HOST:PORT",
    help="A DICOM peer reached over TLS (repeatable): as --dimse-peer, its C-MOVEs sent over DICOM TLS.",
)
@click.option(
    "--public-url",
    default=None,
    help="URL clients reach the server at behind a reverse proxy (https://host/prefix), for the absolute "
    "URLs in answers (metadata BulkDataURI, STOW RetrieveURL) [default: each request's Host].",
)
@click.option(
    "--header-timeout",
    default=HEADER_TIMEOUT,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds a request's headers may take to arrive; then 408 and the connection is closed "
    "(half-open connections held the server's files until none were left).",
)
@click.option(
    "--send-timeout",
    default=SEND_TIMEOUT,
    show_default=True,
    type=click.FloatRange(min=0.1, max=86400),
    help="Seconds a client may take none of an answer; then its connection is closed (a reader that stopped "
    "held its socket, files and memory for ever).",
)
@click.option(
    "--body-timeout",
    default=BODY_TIMEOUT,
    show_default=True,
    type=click.FloatRange(min=0.1, max=86400),
    help="Seconds of grace a STOW-RS body gets; past it the body must average 16 KiB/s, or 408 and the "
    "connection is closed (a body that trickled held the upload budget: other uploads waited).",
)
@click.option(
    "--dimse-timeout",
    default=DIMSE_TIMEOUT,
    show_default=True,
    type=click.FloatRange(min=0.1, max=86400),
    help="Seconds a DICOM peer may leave a PDU unfinished or not take what is sent; then its connection is "
    "closed (peers that stopped mid-PDU held their associations for ever and locked other senders out).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="Log level of the service and uvicorn; debug adds the access log and keeps every traceback "
    "(otherwise a response cut by a damaged file or by the stop is one line).",
)
@handle_errors
def serve(
    store: str,
    catalog: str | None,
    host: str,
    port: int,
    token: str | None,
    dimse_port: int | None,
    ae_title: str,
    dimse_peers: tuple[str, ...],
    max_upload: int,
    max_results: int,
    workers: int | None,
    processes: int | None,
    max_live: int,
    read_ahead: int | None,
    no_precompute: bool,
    cors_origins: tuple[str, ...],
    tls_cert: str | None,
    tls_key: str | None,
    dimse_tls_port: int | None,
    dimse_tls_ca: str | None,
    dimse_tls_peers: tuple[str, ...],
    public_url: str | None,
    header_timeout: float,
    send_timeout: float,
    body_timeout: float,
    dimse_timeout: float,
    log_level: str,
    create: bool = False,
) -> None:
    """Serve STORE over HTTP: DICOMweb under /dicomweb, ZIPs at /studies/{uid}/archive.zip?preset=NAME.

    \b
    Examples:
      medcodec serve --store store/                       # http://127.0.0.1:8044
      curl -o ct.zip 'http://127.0.0.1:8044/studies/1.2.3/archive.zip?preset=diagnostic'
      MEDCODEC_TOKEN=... medcodec serve --store store/ --host 0.0.0.0 --dimse-port 11112 \\
          --tls-cert cert.pem --tls-key key.pem
      medcodec serve --store store/ --host 10.0.0.2 --tls-cert cert.pem --tls-key key.pem \\
          --dimse-tls-port 2762 --dimse-tls-ca site-ca.pem --dimse-tls-peer WS=10.0.0.5:2762

    STORE must exist (`medcodec ingest` makes stores) unless --create is given. What keeps the
    server from starting (no such store, a catalog that does not open, a port in use) is one
    'error:' line, exit 2, before anything is served. Ctrl-C or SIGTERM stops it (requests in
    progress get up to 5 s, then one not answered yet gets 503; open DICOM associations get 5 s,
    then A-ABORT), exit 0.
    """
    limit_malloc_arenas()  # before any thread allocates: a long-running server kept what it freed
    import uvicorn

    from ..delivery import open_store
    from ..errors import NotFoundError
    from ..service.app import create_app
    from ..service.settings import TOKEN_ENV, Settings

    settings = Settings(
        store=store,
        catalog=catalog,
        host=host,
        port=port,
        token=token or os.environ.get(TOKEN_ENV) or None,
        dimse_port=dimse_port,
        ae_title=ae_title,
        dimse_peers=tuple(_peer(text) for text in dimse_peers)
        + tuple(_peer(text, "--dimse-tls-peer") for text in dimse_tls_peers),
        dimse_tls_port=dimse_tls_port,
        dimse_tls_ca=dimse_tls_ca,
        dimse_tls_peers=tuple(_peer(text, "--dimse-tls-peer")[0] for text in dimse_tls_peers),
        max_upload_bytes=max_upload * 1024 * 1024,
        max_results=max_results,
        live_workers=workers or os.cpu_count() or 1,
        **({} if processes is None else {"live_processes": processes}),
        max_live_streams=max_live,
        read_ahead_bytes=None if read_ahead is None else read_ahead * 1024 * 1024,
        precompute_received=not no_precompute,
        cors_origins=tuple(cors_origins)
        or tuple(o.strip() for o in os.environ.get("MEDCODEC_CORS_ORIGINS", "").split(",") if o.strip()),
        tls_certfile=tls_cert,
        tls_keyfile=tls_key,
        public_url=public_url,
        body_timeout=body_timeout,
        dimse_timeout=dimse_timeout,
    )
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_level != "debug":
        for handler in logging.getLogger().handlers:
            handler.addFilter(_LibraryTracebacks())
        # each DIMSE request and response, every C-FIND identifier (a patient's name in the log):
        # debug only; medcodec.dimse says one line per association
        logging.getLogger("pynetdicom").setLevel(max(logging.WARNING, logging.getLogger().level))
        # pydicom's value checks, a line per odd value it reads or sets (an SH of 56 characters in a
        # C-FIND answer, a query's IS '1*'), quoting the values: the server serves data as it came
        # and says what it refuses itself (81 such lines in an outside audit with Orthanc, 2026-12-05)
        from pydicom import config as pydicom_config

        pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
        pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE
    # everything that keeps the server from starting is found here, before uvicorn, as one 'error:' line:
    # the store opened (a missing one created only with --create), the ports bound
    try:
        if not create:  # a missing store is refused, never made...
            open_store(store, catalog=catalog, create=False).close()
        opened = open_store(store, catalog=catalog, create=True)  # ... and an existing one gets newer tables
    except NotFoundError as exc:
        raise NotFoundError(f"{exc} (`medcodec ingest` makes a store; --create serves an empty one)") from None
    if dimse_port is not None and dimse_port == port != 0:  # both bound (SO_REUSEADDR), neither listening yet:
        # the check below passed and the SCP failed after startup, with a traceback (an audit, 2026-12-03)
        raise click.ClickException(f"--dimse-port {dimse_port} is --port too: give DICOM another port")
    with contextlib.closing(opened), _listening(host, port, "--port") as sock:
        for option, number in (("--dimse-port", dimse_port), ("--dimse-tls-port", dimse_tls_port)):
            if number is not None:
                with _listening(host, number, option):
                    pass  # free now; the SCP binds it when the application starts
        port = sock.getsockname()[1]  # --port 0: the port the system chose
        app = create_app(settings, store=opened)
        url = f"{settings.scheme}://{_url_host(host)}:{port}/"
        click.echo(f"medcodec serve: {url} (DICOMweb at /dicomweb, viewer at /viewer/)", err=True)
        if settings.in_clear:
            click.echo("warning: off loopback without --tls-cert, the bearer token and the images cross the "
                       "network in clear", err=True)  # fmt: skip
        open_files = raise_open_files_limit()
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=log_level == "debug",
            timeout_graceful_shutdown=GRACE_SECONDS,
            ssl_certfile=settings.tls_certfile,
            ssl_keyfile=settings.tls_keyfile,
            http=with_header_timeout(header_timeout, send_timeout),
            limit_concurrency=connection_budget(open_files),  # past it, 503 from uvicorn
        )
        if log_level != "debug":  # uvicorn's logger has its own handler (uvicorn.Config configured it just now)
            logging.getLogger("uvicorn.error").addFilter(_CutResponses())
        server = uvicorn.Server(config)
        try:
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C / SIGTERM after a graceful shutdown: the normal end
                server.run(sockets=[sock])
        except SystemExit:
            if not server.should_exit:
                raise
            # Ctrl-C / SIGTERM to the process group during start-up (systemd's stop, a terminal): the
            # encoder processes, still importing, died of it and the start failed: a stop, not a bug
            # (exit 3 and "internal error" until 2026-12-05, an outside audit)
            click.echo("medcodec serve: stopped during start-up", err=True)
            return
    if server.should_exit and not server.started:
        click.echo("medcodec serve: stopped during start-up", err=True)
        return
    if not server.started:  # the application's startup failed (logged above): none of the causes checked here
        click.echo("error: the server did not start (see the log above)", err=True)
        raise SystemExit(EXIT_BUG)


@contextlib.contextmanager
def _listening(host: str, port: int, option: str) -> Iterator[socket.socket]:
    """A TCP socket bound to ``host:port`` as uvicorn binds it (closed on exit); a port in use or
    an address that is not this machine's is a usage error naming ``option``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on accepted sockets
    # whose proto says TCP, and an accepted socket inherits it. With proto 0 every answer sent in two
    # writes (head, then body) on a kept-alive connection waited for the client's delayed ACK:
    # +40 ms on each QIDO search, /health, metadata or frame after a connection's first (2026-12-03)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError as exc:
            hint = f" (another server? choose another {option})" if exc.errno == errno.EADDRINUSE else ""
            reason = exc.strerror or exc
            raise click.ClickException(f"cannot listen on {_url_host(host)}:{port}: {reason}{hint}") from None
        yield sock
    finally:
        sock.close()


def _url_host(host: str) -> str:
    """``::1`` -> ``[::1]`` (an IPv6 address in a URL), other hosts as they are."""
    return f"[{host.strip('[]')}]" if ":" in host else host


def _peer(text: str, option: str = "--dimse-peer") -> tuple[str, str, int]:
    """``AE=HOST:PORT`` -> (AE, HOST, PORT); a malformed one is a usage error."""
    ae, sep, address = text.partition("=")
    host, colon, port = address.rpartition(":")
    if not sep or not colon or not host or not port.isdigit():
        raise click.BadParameter(f"{text!r}: expected AE=HOST:PORT (e.g. WORKSTATION=10.0.0.5:11112)",
                                 param_hint=option)  # fmt: skip
    return ae.strip(), host.strip("[]"), int(port)


class _LibraryTracebacks(logging.Filter):
    """pydicom logs every pixel decoder that fails on an image, with its traceback, at ERROR before
    it tries the next: each request on an image no decoder here reads (a preset passes it through,
    /rendered refuses it, both said to the client) looked like a server fault in the log. Such a
    record becomes one WARNING line naming the exception; ``--log-level debug`` keeps it whole.
    asyncio's "socket.send() raised exception." (a write to a connection the client has closed: a
    download given up, which the service counts and cleans up) is dropped: ~60 aborted downloads
    wrote 83 such lines (an outside audit, 2026-12-02). pynetdicom's lines are said once a
    connection, and its network errors are one WARNING line (:meth:`_dicom_network`)."""

    def __init__(self) -> None:
        super().__init__()
        self._said: weakref.WeakKeyDictionary[threading.Thread, set[str]] = weakref.WeakKeyDictionary()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "asyncio" and str(record.msg).startswith("socket.send() raised exception"):
            return False
        if record.name.startswith("pynetdicom"):
            return self._once_a_connection(record) and (record.levelno < logging.ERROR or self._dicom_network(record))
        if record.name.startswith("pydicom") and record.levelno >= logging.ERROR and record.exc_info:
            exc = record.exc_info[1]
            record.msg, record.args = f"{record.getMessage()} ({type(exc).__name__})", None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True

    def _once_a_connection(self, record: logging.LogRecord) -> bool:
        """A pynetdicom line said again on the same connection (its association's thread) is dropped:
        a C-MOVE destination that stopped answering wrote "C-STORE sub-operation failed." and
        "Association must be established ..." once for each of 97 instances left (an outside audit
        with Orthanc, 2026-12-05); the association's own line counts them. "Unknown PDU type
        received '0x..'" is one line whatever the byte: bytes that are not DICOM are said once."""
        said = self._said.setdefault(threading.current_thread(), set())
        message = record.getMessage()
        message = "Unknown PDU type" if message.startswith("Unknown PDU type") else message
        if message in said:
            return False
        if len(said) < 100:
            said.add(message)
        return True

    def _dicom_network(self, record: logging.LogRecord) -> bool:
        """pynetdicom's ERROR records for what a peer did to the connection (reset it, closed it in
        a PDU, sent bytes that are not DICOM or a PDU its upper layer cannot decode) become one
        WARNING line, without the traceback; bytes that are not DICOM are said once per connection
        (64 KiB of zeros wrote 823 ERROR lines; a 30-minute soak 5,572 of them, 290 with a
        traceback: an outside audit, 2026-12-05). Any other ERROR (an exception in a handler: a
        bug) is left whole."""
        exc = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        garbled = message.startswith("Unknown PDU type")
        network = (
            garbled
            or isinstance(exc, OSError)
            or message.startswith(("Connection closed before", "[Errno", "Connection reset", "Connection timed out"))
            # the upper layer reading the peer's PDUs: a request it cannot decode (a calling AE title of
            # spaces wrote 13 lines with a traceback a connection: an outside audit, 2026-12-05); the
            # transport: a C-MOVE destination that refuses the connection (ERROR twice before medcodec's
            # own WARNING naming it)
            or record.name in ("pynetdicom.dul", "pynetdicom.transport")
        )
        if not network:
            return True
        if garbled:  # the first on its connection (_once_a_connection)
            message += " (not DICOM; further bytes on this connection not logged)"
        record.msg, record.args = message + (f" ({type(exc).__name__})" if exc is not None else ""), None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
        return True


#: How long a stop (SIGTERM, Ctrl-C) lets answers still being sent finish before uvicorn cuts them.
GRACE_SECONDS = 5


class _CutResponses(logging.Filter):
    """An answer that fails after its status line went out can only be cut (the client sees fewer
    bytes than its Content-Length, or no last chunk). uvicorn then logs "Exception in ASGI
    application" with two chained tracebacks; when the cause is one of medcodec's own errors (a
    stored file damaged or deleted while it was being sent: the error names it and ``store
    check``) the service has already logged it as one ERROR line, so uvicorn's record is dropped.
    An answer still being sent when the stop's grace ran out (uvicorn cancels its task: a
    ``CancelledError``) is one line saying so, not two tracebacks (an outside audit, 2026-12-04).
    Anything else (a bug) keeps its traceback, and ``--log-level debug`` keeps them all."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.exc_info and str(record.msg).startswith("Exception in ASGI application")):
            return True
        exc = record.exc_info[1]
        if isinstance(exc, asyncio.CancelledError):
            record.msg = "an answer still being sent was cut: the server stopped (%d s grace)"
            record.args = (GRACE_SECONDS,)
            record.exc_info, record.exc_text = None, None
            return True
        from ..service.errors import codec_cause

        return codec_cause(exc) is None
