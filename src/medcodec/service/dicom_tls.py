"""DICOM TLS: the SSL contexts of the SCP's TLS port and of C-MOVE destinations reached over TLS.

PS3.15 Annex B.9, the "Non-Downgrading BCP 195 TLS Secure Transport Connection Profile" (DCMTK's
default, ``+py``): TLS 1.2 or newer; under TLS 1.2 the forward-secret AEAD suites of RFC 9325 only
(:data:`TLS12_CIPHERS`). Port 2762 is IANA's ``dicom-tls``.

Who is trusted:

* **callers on the TLS port**: with ``ca`` (``--dimse-tls-ca``) a caller must present a
  certificate signed by one of those authorities (mutual TLS, the authenticated node of PS3.15
  B.1), else the handshake fails and nothing DICOM is read; without it any caller may connect
  (encrypted, the server authenticated, the caller known by its AE title and address only, as on
  the plain port);
* **a C-MOVE destination over TLS** (``--dimse-tls-peer``): with ``ca``, its certificate must be
  signed by one of those authorities (a site's own PKI: the host name is not checked, as DCMTK does
  not; a hospital's DICOM certificates name devices, rarely the address a peer is configured by);
  without, by the system's trust store, host name checked (public PKI's rule). medcodec presents
  its own certificate (``--tls-cert``), which a destination that authenticates its callers needs.

The TLS handshake of an accepted connection runs in the connection's own thread under
``--dimse-timeout`` (:func:`medcodec.service.dimse.start_scp`), not where pynetdicom does it, in the
accept loop with no timeout: there one connection that never said hello stopped every other.
"""

from __future__ import annotations

import ssl

from ..errors import InvalidInputError

__all__ = ["server_context", "client_context", "DICOM_TLS_PORT"]

#: IANA's port for DICOM over TLS (``dicom-tls``), what ``--dimse-tls-port`` is usually given.
DICOM_TLS_PORT = 2762


def _load_chain(context: ssl.SSLContext, certfile: str, keyfile: str) -> None:
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInputError(f"TLS certificate {certfile!r} and key {keyfile!r} do not load: {exc}") from exc


def _load_ca(context: ssl.SSLContext, ca: str) -> None:
    try:
        context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInputError(f"TLS CA certificates {ca!r} do not load: {exc}") from exc


#: TLS 1.2 cipher suites: forward-secret AEAD only (RFC 9325 §4.2, BCP 195 as PS3.15 B.9 names it;
#: TLS 1.3's are all such). Python's defaults also offered ECDHE with AES-CBC-SHA256/384 (an outside
#: re-check, 2026-12-05).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL"


def _bcp195(context: ssl.SSLContext) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # BCP 195: no TLS 1.0 / 1.1, no SSL
    context.set_ciphers(TLS12_CIPHERS)


def server_context(certfile: str, keyfile: str, ca: str | None = None) -> ssl.SSLContext:
    """The context of the SCP's TLS port: its certificate and key; with ``ca``, callers must present
    a certificate one of its authorities signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _bcp195(context)
    _load_chain(context, certfile, keyfile)
    if ca is not None:
        _load_ca(context, ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(certfile: str | None, keyfile: str | None, ca: str | None = None) -> ssl.SSLContext:
    """The context medcodec reaches a C-MOVE destination over TLS with: its own certificate when it
    has one; the destination verified against ``ca`` alone (host name not checked), or without
    ``ca`` against the system's trust store with its host name."""
    if ca is None:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_REQUIRED
        _load_ca(context, ca)
    _bcp195(context)
    if certfile is not None and keyfile is not None:
        _load_chain(context, certfile, keyfile)
    return context
