"""Settings of ``medcodec serve``: one frozen dataclass, validated when built.

Binding anywhere but loopback requires a bearer token (``--token`` or ``MEDCODEC_TOKEN``): a
store of patient images must not be readable by the whole network because of a flag typo.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field

from ..errors import InvalidInputError

__all__ = ["Settings", "is_loopback", "TOKEN_ENV"]

#: Seconds a DICOM peer's connection may leave a PDU unfinished, or not take what the SCP sends,
#: before it is closed (``--dimse-timeout``, :func:`medcodec.service.dimse.start_scp`). pynetdicom's
#: accepted sockets had no timeout at all (Python's ``accept()`` makes them blocking): its network
#: and ARTIM timers run between PDUs only, so a peer that sent part of an A-ASSOCIATE-RQ or a P-DATA
#: and stopped held its association for ever, 32 of them locked every sender out, and a C-GET to a
#: requestor that stopped reading never ended (an outside audit, 2026-12-05). 30 s, pynetdicom's
#: ACSE timeout.
DIMSE_TIMEOUT = 30.0
#: ``medcodec serve``'s port when none is given. Not 8042, Orthanc's: sites run the two side by
#: side, and ``make test`` installs Orthanc, whose service (started by its package on a systemd
#: Debian) then held the port (an outside audit on a clean Debian, 2026-12-05).
DEFAULT_PORT = 8044
#: Environment variable holding the bearer token when ``--token`` is not given.
TOKEN_ENV = "MEDCODEC_TOKEN"
#: A browser origin: scheme, host, optional port, nothing else (no path, no trailing slash).
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1).

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0"), is_loopback("localhost")
    (True, True, False, True)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """What the server serves and how.

    Parameters
    ----------
    store
        Store URL or folder (:func:`medcodec.delivery.open_store`).
    host, port
        Where uvicorn binds (for the token rule; the app itself does not bind).
    token
        Bearer token every request but ``GET /health`` must carry; required off loopback.
    catalog
        Catalog URL overriding the store's own SQLite file.
    max_upload_bytes
        STOW-RS body limit (413 past it).
    live_workers
        Threads encoding live archives (the nogil kernels; default: CPU count).
    live_processes
        Encoder processes for live archives (0: encode in the server's threads). Default: the CPU
        count on a multi-core machine, where they avoid the GIL; each costs ~100-150 MB of memory.
    live_window
        Instances read/encoded ahead of the one being sent, per live stream (bounds memory).
    max_live_streams
        Live archives encoded at once; more wait their turn (bounds CPU and memory).
    read_ahead_bytes
        Bytes every live archive and WADO-RS answer together may hold read or encoded ahead of what
        they send (``--read-ahead``; ``None``: :data:`~medcodec.delivery.live.READ_AHEAD_BYTES`).
    dimse_port, ae_title
        DICOM SCP port (``None``: no DIMSE) and its AE title: C-STORE in, C-FIND / C-GET / C-MOVE out.
    dimse_peers
        Known DICOM peers, ``((ae_title, host, port), ...)``: C-MOVE destinations and, when the
        SCP listens off loopback, the only callers that may query and retrieve.
    dimse_tls_port
        A second SCP port speaking DICOM TLS (``--dimse-tls-port``, 2762 usually; PS3.15 B.9, BCP
        195), with :attr:`tls_certfile` / :attr:`tls_keyfile`: the same services as
        :attr:`dimse_port`, which may then be ``None`` (no port in clear).
        :mod:`medcodec.service.dicom_tls` says who is trusted.
    dimse_tls_ca
        PEM certificates of the authorities DICOM TLS peers are verified against: callers on
        :attr:`dimse_tls_port` must present a certificate they signed (mutual TLS), C-MOVE
        destinations over TLS must have one (``--dimse-tls-ca``).
    dimse_tls_peers
        AE titles of :attr:`dimse_peers` that a C-MOVE reaches over TLS (``--dimse-tls-peer``).
    precompute_received
        Pre-compute, in the background, the studies that instances arrive in over STOW-RS or
        C-STORE (:mod:`medcodec.delivery.refresher`); ``False`` leaves them live until
        ``medcodec ingest --refresh``.
    precompute_quiet
        Seconds without a new instance in a study before it is pre-computed.
    precompute_wait
        Seconds an archive request waits for its study's pre-computation in progress before it
        streams the archive live instead.
    cors_origins
        Origins whose pages may call the server from a browser (CORS: a DICOMweb viewer such as
        OHIF served from elsewhere), ``"*"`` for any; empty (the default): none. The bearer token,
        when the server has one, is still required; ``"*"`` requires one (any site's page could
        otherwise read the store: an outside audit, 2026-12-05).
    tls_certfile, tls_keyfile
        PEM certificate (chain) and private key: serve HTTPS (uvicorn's TLS). Both or neither. Off
        loopback without them the bearer token crosses the network in clear (the CLI warns).
    max_results
        Most results in one QIDO-RS answer, whether or not the client gives ``limit`` (a larger
        ``limit``, or none, gets this many and a ``Warning: 299``; PS3.18 §8.3.4.4).
    body_timeout
        Seconds a request body (STOW-RS) may take beyond what it is owed for its size at
        :data:`~medcodec.service.connections.BODY_MIN_RATE`; then 408 and the connection is closed
        (``--body-timeout``).
    dimse_timeout
        Seconds a DICOM peer may leave a PDU unfinished or not take what is sent
        (:data:`DIMSE_TIMEOUT`, ``--dimse-timeout``).
    public_url
        The URL clients reach the server at (``https://pacs.example.org/medcodec``: behind a reverse
        proxy), for the absolute URLs answers carry (``BulkDataURI`` in metadata, STOW-RS
        ``RetrieveURL``). ``None``: each request's own (:func:`medcodec.service.http.base_url`).
    """

    store: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None
    catalog: str | None = None
    max_upload_bytes: int = 512 * 1024 * 1024
    max_results: int = 10_000
    live_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    live_processes: int = field(default_factory=lambda: (os.cpu_count() or 1) if (os.cpu_count() or 1) > 1 else 0)
    live_window: int = 8
    max_live_streams: int = 4
    read_ahead_bytes: int | None = None
    dimse_port: int | None = None
    ae_title: str = "MEDCODEC"
    dimse_peers: tuple[tuple[str, str, int], ...] = ()
    dimse_tls_port: int | None = None
    dimse_tls_ca: str | None = None
    dimse_tls_peers: tuple[str, ...] = ()
    precompute_received: bool = True
    precompute_quiet: float = 0.5
    precompute_wait: float = 10.0
    cors_origins: tuple[str, ...] = ()
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    public_url: str | None = None
    body_timeout: float = 60.0
    dimse_timeout: float = DIMSE_TIMEOUT

    @property
    def scheme(self) -> str:
        """``https`` with a certificate, else ``http``."""
        return "https" if self.tls_certfile else "http"

    @property
    def in_clear(self) -> bool:
        """Bound off loopback without TLS: the token and the images cross the network in clear."""
        return not is_loopback(self.host) and self.tls_certfile is None

    def __post_init__(self) -> None:
        if not self.store:
            raise InvalidInputError("a store is required (--store)")
        if not is_loopback(self.host) and not self.token:
            raise InvalidInputError(
                f"binding to {self.host} (not loopback) requires a bearer token: pass --token or set {TOKEN_ENV}"
            )
        if self.token is not None and len(self.token) < 16:
            raise InvalidInputError("the token must be at least 16 characters")
        for name in ("max_upload_bytes", "max_results", "live_workers", "live_window", "max_live_streams"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name}={value!r} must be a positive integer")
        if self.read_ahead_bytes is not None and not (
            isinstance(self.read_ahead_bytes, int) and self.read_ahead_bytes >= 1
        ):
            raise InvalidInputError(f"read_ahead_bytes={self.read_ahead_bytes!r} must be a positive integer")
        for name in ("body_timeout", "dimse_timeout"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.1 <= value <= 86400):
                raise InvalidInputError(f"{name}={value!r} must be 0.1 to 86400 seconds")
        for name in ("precompute_quiet", "precompute_wait"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value <= 3600):
                raise InvalidInputError(f"{name}={value!r} must be 0-3600 seconds")
        if not (isinstance(self.port, int) and 0 <= self.port < 65536):
            raise InvalidInputError(f"port={self.port!r} is not a TCP port")
        for name in ("dimse_port", "dimse_tls_port"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and 0 < value < 65536):
                raise InvalidInputError(f"{name}={value!r} is not a TCP port")
        if self.public_url is not None and not re.fullmatch(r"https?://[^\s/?#\"\\]+(/[^\s?#\"\\]*)?", self.public_url):
            raise InvalidInputError(f"public_url={self.public_url!r}: expected http(s)://host[:port][/path]")
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise InvalidInputError("TLS needs both a certificate (--tls-cert) and its private key (--tls-key)")
        for path in (self.tls_certfile, self.tls_keyfile):
            if path is not None and not os.path.isfile(path):
                raise InvalidInputError(f"TLS file {path!r} does not exist")
        if self.dimse_tls_ca is not None and not os.path.isfile(self.dimse_tls_ca):
            raise InvalidInputError(f"TLS file {self.dimse_tls_ca!r} does not exist")
        from .dicom_tls import client_context, server_context

        if self.tls_certfile is not None and self.tls_keyfile is not None:
            # what uvicorn and the SCP will do, here, so that a wrong pair is a message and not a traceback
            server_context(self.tls_certfile, self.tls_keyfile, self.dimse_tls_ca)
        elif self.dimse_tls_port is not None:
            raise InvalidInputError("a DICOM TLS port (--dimse-tls-port) needs --tls-cert and --tls-key")
        if self.dimse_tls_ca is not None:
            client_context(None, None, self.dimse_tls_ca)  # a CA file that does not load: said now
        if self.dimse_tls_port is not None and self.dimse_tls_port in (self.dimse_port, self.port):
            raise InvalidInputError(f"the DICOM TLS port {self.dimse_tls_port} is already the HTTP or DICOM port")
        if "*" in self.cors_origins and not self.token:
            raise InvalidInputError(
                f"--cors-origin '*' lets the pages of any site read the store: it needs a bearer token "
                f"(--token or {TOKEN_ENV}), or name the viewer's origin (e.g. http://localhost:3000)"
            )
        for origin in self.cors_origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise InvalidInputError(
                    f"CORS origin {origin!r}: expected '*' or scheme://host[:port] (e.g. http://localhost:3000)"
                )
        for ae in (self.ae_title, *(peer[0] for peer in self.dimse_peers)):
            if not (1 <= len(ae) <= 16 and ae.isascii() and ae.isprintable() and "\\" not in ae and ae.strip()):
                raise InvalidInputError(f"AE title {ae!r}: expected 1-16 printable ASCII characters (PS3.5 AE)")
        for peer in self.dimse_peers:
            if len(peer) != 3 or not peer[1] or not (isinstance(peer[2], int) and 0 < peer[2] < 65536):
                raise InvalidInputError(f"DICOM peer {peer!r}: expected (AE title, host, port)")
        unknown = set(self.dimse_tls_peers) - {peer[0] for peer in self.dimse_peers}
        if unknown:
            raise InvalidInputError(f"DICOM TLS peer(s) {sorted(unknown)} are not among the DICOM peers")
