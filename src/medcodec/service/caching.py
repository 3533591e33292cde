"""What caches may do with each answer (RFC 9111), decided in one place.

An outside audit (2026-12-02) put nginx and Varnish in front of the server and found answers
that a cache kept or shared wrongly: an archive URL marked ``immutable`` whose study later
changed (caches served the old study for a year, after a deletion too), ``public`` archives
fetched with the bearer token (served to clients without it), WADO-RS answers chosen by
``Accept`` without ``Vary: Accept`` (a lossy .51 served to a client that asked for the original),
and DICOMweb answers and errors with no ``Cache-Control`` (caches applied a default lifetime). The
rules now, applied by :class:`CachePolicy` to every response on its way out:

=========================================  =====================================================
answer                                     Cache-Control
=========================================  =====================================================
a pre-computed archive, stable URL         ``public, no-cache``: stored, revalidated on every use
                                           (``If-None-Match`` → 304 for the same ETag)
the same archive at its versioned URL      ``public, max-age=31536000, immutable``
(``&version=<ETag>``: its bytes never
change; another version is 404)
a live archive                             ``no-store`` (no length, no ETag)
any other 2xx / 3xx without one            ``no-cache`` (DICOMweb, WADO-URI, viewer pages)
any error (status >= 400)                  ``no-store``
with a bearer token configured             ``public`` becomes ``private``; ``private`` added
                                           (RFC 9111 §3.5: ``public`` lets a shared cache give
                                           an authorised answer to anybody)
=========================================  =====================================================

Answers under ``/dicomweb`` and ``/wado`` also say ``Vary: Accept`` (their representation is
chosen by it, RFC 9110 §12.5.5). ``If-Match`` (RFC 9110 §13.1.1): on a POST (STOW-RS) anything but
``*`` is 412 before the request runs (nothing it targets has an ETag); on a GET / HEAD a 2xx answer
that does not carry a listed ETag (strong comparison) becomes 412, while other answers (404...)
stay as they are (§13.2.1); the archive routes evaluate it themselves before any work
(:func:`if_match_fails`).
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response

__all__ = ["CachePolicy", "IMMUTABLE", "REVALIDATE", "if_match_fails", "etag_in"]

#: Cache-Control of an archive at its versioned URL (its bytes never change).
IMMUTABLE = "public, max-age=31536000, immutable"
#: Cache-Control of an archive at its stable URL (the study may change: revalidate every use).
REVALIDATE = "public, no-cache"
_NEGOTIATED = ("/dicomweb", "/wado")


def etag_in(header: str | None, etag: str | None, *, weak: bool) -> bool:
    """``etag`` is listed in an ``If-None-Match`` (``weak=True``) or ``If-Match`` (``weak=False``)
    value; ``*`` matches any current representation (RFC 9110 §13.1.1-2).

    >>> etag_in('W/"a", "b"', '"a"', weak=True), etag_in('W/"a"', '"a"', weak=False)
    (True, False)
    >>> etag_in("*", None, weak=False), etag_in('"a"', None, weak=False)
    (True, False)
    """
    if header is None:
        return False
    if header.strip() == "*":
        return True
    if etag is None:
        return False
    for tag in (t.strip() for t in header.split(",")):
        if tag == etag or (weak and tag.removeprefix("W/") == etag.removeprefix("W/")):
            return True
    return False


def if_match_fails(header: str | None, etag: str | None) -> bool:
    """An ``If-Match`` that makes a 2xx answer with ``etag`` (``None``: it has none) a 412."""
    return header is not None and not etag_in(header, etag if etag and not etag.startswith("W/") else None, weak=False)


def _with_private(value: str) -> str:
    directives = [d.strip() for d in value.split(",") if d.strip()]
    if any(d.lower() == "no-store" for d in directives):
        return value
    directives = [d for d in directives if d.lower() != "public"]
    if not any(d.lower() == "private" for d in directives):
        directives.insert(0, "private")
    return ", ".join(directives)


class CachePolicy:
    """ASGI middleware applying the module's rules to every HTTP response.

    Parameters
    ----------
    app
        The application.
    private
        A bearer token is configured: every answer is for its requester only.
    """

    def __init__(self, app: ASGIApp, *, private: bool):
        self.app = app
        self.private = private

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        if_match = request_headers.get("if-match")
        path = str(scope.get("path", ""))
        if if_match is not None and scope.get("method") not in ("GET", "HEAD") and if_match_fails(if_match, None):
            # a state-changing request (STOW-RS) is judged before it runs (RFC 9110 §13.1.1): no
            # resource it targets has an ETag, so a listed one fails; it stored, then said 412,
            # until an outside audit found it (2026-12-02)
            detail = f"If-Match {if_match}: {path} has no entity tag, nothing was done"
            response = error_response(412, "PreconditionFailedError", detail)
            self._police(412, MutableHeaders(raw=response.raw_headers), path)
            await response(scope, receive, send)
            return
        failed = False

        async def policed(message: Message) -> None:
            nonlocal failed
            if failed:  # the answer became a 412: the app's body goes nowhere
                return
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                if 200 <= status < 300 and if_match_fails(if_match, headers.get("etag")):
                    failed = True
                    detail = f"If-Match {if_match} does not match the current representation"
                    if headers.get("etag"):
                        detail += f" ({headers['etag']})"
                    response = error_response(412, "PreconditionFailedError", detail)
                    self._police(412, MutableHeaders(raw=response.raw_headers), path)
                    await response(scope, receive, send)
                    return
                self._police(status, headers, path)
            await send(message)

        await self.app(scope, receive, policed)

    def _police(self, status: int, headers: MutableHeaders, path: str) -> None:
        if status >= 400:
            headers["Cache-Control"] = "no-store"
        elif "cache-control" not in headers:
            headers["Cache-Control"] = "no-cache"
        if self.private:
            headers["Cache-Control"] = _with_private(headers["Cache-Control"])
        if path.startswith(_NEGOTIATED) and status < 400:
            vary = [v.strip() for v in headers.get("vary", "").split(",") if v.strip()]
            if not any(v.lower() in ("accept", "*") for v in vary):
                headers["Vary"] = ", ".join(["Accept", *vary])
