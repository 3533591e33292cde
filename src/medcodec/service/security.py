"""What protects a browser's user from the server's content and from other sites' pages, in one place.

An outside audit (2026-12-05) found, on the default set-up (loopback, no token):

* **DNS rebinding**: the server answered any ``Host``. A page whose name its owner points at
  127.0.0.1 is then the server's own origin, and read every study (and stored by STOW-RS). Without a
  token (:class:`HostCheck`), a request must name the server ``localhost``, by an address in any
  form (``127.0.0.1``, ``[::1]``, ``127.1``: a rebound page names its own domain), by the machine's
  own name when it resolves to loopback, or by the host of ``--public-url`` (any port; no Host at
  all, HTTP/1.0, passes too); another name is 421 Misdirected Request (``GET /health`` excepted:
  no data, and probes name servers as they like). ``--cors-origin '*'`` needs a token
  (:class:`~.settings.Settings`): it let any site's page read the store. With a token a rebound
  page has no token, and the check is not made (the server is then reached by names this module
  cannot know: a reverse proxy, a LAN name).
* **script in stored documents**: an Encapsulated Document declared ``text/html`` or
  ``image/svg+xml`` was served so by WADO-RS bulk data, and ran on the server's origin; a MIME
  type with a line break crashed the answer. Every answer but the viewer's files now carries
  :data:`API_POLICY` (``sandbox``: a document the browser renders from it runs no script and has no
  origin), and the MIME type is checked (:func:`medcodec.delivery.live.document_media_type`);
* **no security headers**: the viewer could be framed by any site (clickjacking). Every answer
  says ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``; the viewer's files
  :data:`VIEWER_POLICY` (its own scripts, styles and connections only; no framing).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import MisdirectedRequestError, error_response, status_for

__all__ = ["HostCheck", "SecurityHeaders", "API_POLICY", "VIEWER_POLICY", "host_allowed", "viewer_file"]

#: Content-Security-Policy of every answer but the viewer's files (DICOMweb, archives, errors): a
#: browser that renders one (an HTML or SVG document stored in an instance) runs no script in it.
API_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; sandbox"
#: Content-Security-Policy of the viewer's page and scripts: its own files, its own server.
VIEWER_POLICY = (
    "default-src 'none'; script-src 'self'; worker-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
    "style-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def viewer_file(path: str) -> bool:
    """Whether ``path`` is one of the viewer's static files (HTML, scripts, styles shipped in the
    package: no patient data), not its data routes (``/viewer/api/...``): served without the token
    (:mod:`.app`) and under :data:`VIEWER_POLICY`.

    >>> viewer_file("/viewer/"), viewer_file("/viewer/viewer.js"), viewer_file("/viewer/api/studies")
    (True, True, False)
    """
    return path.startswith("/viewer/") and not path.startswith("/viewer/api/") and ".." not in path


def host_allowed(host_header: str, extra: tuple[str, ...] = ()) -> bool:
    """Whether a ``Host`` value may reach this server when it runs without a token: ``localhost``,
    an address rather than a name (a DNS rebinding attack needs a name), none at all (HTTP/1.0), or
    one of ``extra`` (host names, lower case); any port.

    >>> [host_allowed(h) for h in ("127.0.0.1:8044", "localhost", "[::1]:80", "127.9.9.9", "LOCALHOST:1")]
    [True, True, True, True, True]
    >>> [host_allowed(h) for h in ("evil.example:8044", "127.0.0.1.evil.example", "[::1", "localhost.evil")]
    [False, False, False, False]
    >>> [host_allowed(h) for h in ("127.1", "2130706433:80", "0x7f000001", "", "127.0.0.1.")]
    [True, True, True, True, True]
    >>> host_allowed("pacs.example.org", ("pacs.example.org",)), host_allowed("localhost.:8044")
    (True, True)
    """
    value = host_header.strip().lower()
    if not value:  # HTTP/1.0 without Host: no browser sends that
        return True
    if value.startswith("["):  # [v6]:port
        end = value.find("]")
        if end < 0:
            return False
        name = value[1:end]
    else:
        name = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    name = name[:-1] if name.endswith(".") else name  # ``localhost.``: the same name, rooted
    if name == "localhost" or name in extra:
        return True
    return _ip_literal(name)


def _ip_literal(name: str) -> bool:
    """An address, not a name (``127.0.0.1``, ``127.1``, ``2130706433``, ``::1``): a rebound page
    names its own domain, and no resolver is asked for an address."""
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(name)  # the forms browsers and curl also accept (decimal, hex, short)
        return True
    except OSError:
        return False


def _own_loopback_names() -> tuple[str, ...]:
    """This machine's own name when it resolves to a loopback address here (Debian maps it to
    127.0.1.1 in /etc/hosts): ``http://<hostname>:8044/`` on the machine itself is the server too."""
    names = []
    with contextlib.suppress(OSError):
        for name in (socket.gethostname(),):  # (not getfqdn: a reverse lookup, slow where DNS is not there)
            if name and all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(name, None)):
                names.append(name.lower())
    return tuple(names)


class HostCheck:
    """Answer 421 to a request whose ``Host`` is not one of :func:`host_allowed`'s (the server has
    no token; see the module docstring). ``public_url``: ``--public-url``, whose host is allowed."""

    def __init__(self, app: ASGIApp, public_url: str | None = None):
        self.app = app
        host = urlsplit(public_url).hostname if public_url else None
        self.extra = ((host.lower(),) if host else ()) + _own_loopback_names()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") != "/health":  # (no data; probes name the server as they like)
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if not host_allowed(host, self.extra):
                exc = MisdirectedRequestError(
                    "this server has no token: it answers requests that name it localhost or by its address "
                    "(a page of another site must not reach it under its own name); behind a proxy, give --public-url"
                )
                await error_response(status_for(exc), type(exc).__name__, str(exc))(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Add the headers of the module docstring to every answer (those a route set are kept)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        viewer = viewer_file(str(scope.get("path", "")))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Content-Security-Policy", VIEWER_POLICY if viewer else API_POLICY)
                if viewer:
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, with_headers)
