"""``create_app(settings)``: the Starlette application of ``medcodec serve``.

Routes (each module owns its own; errors are mapped in :mod:`.errors` only)::

    GET  /                                              a browser (Accept: text/html): 307 to viewer/;
                                                        otherwise 200 {"service": "medcodec", ...}: where things are
    GET  /health                                        200 {"status": "ok", ...} when the store is open
    /dicomweb/...                                       QIDO-RS, WADO-RS, STOW-RS (:mod:`.dicomweb`)
    GET  /wado?requestType=WADO&studyUID=...            WADO-URI, one object as DICOM or an image (:mod:`.wado_uri`)
    GET  /studies/{study}/archive.zip?preset=&live=     ZIP archives (:mod:`.archives`)
    GET  /studies/{study}/series/{series}/archive.zip
    /viewer/                                            the viewer page (:mod:`.viewer`, when present)

Every request but ``GET /``, ``GET /health`` and the viewer's static files must carry
``Authorization: Bearer <token>`` when the settings have a token (required off loopback,
:class:`.settings.Settings`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__
from ..delivery.live import LivePool
from ..delivery.manifest import CODING_REVISION
from ..delivery.refresher import Refresher
from .caching import CachePolicy
from .connections import quiet_accept_errors
from .errors import UnauthorizedError, error_response, exception_handlers, status_for
from .security import HostCheck, SecurityHeaders, viewer_file
from .settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("medcodec.service")


def _public(path: str) -> bool:
    """Paths served without the token: ``/`` (where things are), ``/health`` and the viewer's static
    files (HTML/JS/CSS shipped in the package, no patient data; a browser cannot send a bearer token
    for them). The viewer's data routes (``/viewer/api/...``), DICOMweb and archives still need it."""
    return path in ("/", "/health") or viewer_file(path)


class _BearerAuth:
    """Reject requests without the right bearer token (constant-time comparison)."""

    def __init__(self, app: ASGIApp, token: str | None):
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http" or _public(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.token):
            exc = UnauthorizedError("missing or wrong bearer token (Authorization: Bearer <token>)")
            response = error_response(
                status_for(exc), type(exc).__name__, str(exc), {"WWW-Authenticate": 'Bearer realm="medcodec"'}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _StoppingAnswer:
    """A request still running when the server stops past its grace (uvicorn cancels it) is answered
    503 with ``Retry-After``, not 500: uvicorn answered 500 and logged "Exception in ASGI
    application" with a ``CancelledError`` traceback for every STOW-RS still uploading at a restart
    (an outside audit, 2026-12-02). A response already started is cut, as before."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except asyncio.CancelledError:
            if started:
                raise
            log.warning("%s %s: the server stopped before it finished: answered 503", scope.get("method"),
                        scope.get("path"))  # fmt: skip
            detail = ("the server is stopping and did not finish this request: send it again (instances it "
                      "stored already come back as duplicates)")  # fmt: skip
            headers = {"Retry-After": "10", "Connection": "close"}
            await error_response(503, "ServiceUnavailable", detail, headers)(scope, receive, send)


async def _index(request: Request) -> Response:
    """``GET /``: the address ``medcodec serve`` prints. A browser goes on to the viewer page; any other
    client gets where the services are (was a 404: an outside audit, 2026-12-03). The paths are
    relative, so they hold behind a proxy that serves the app under a prefix."""
    vary = {"Vary": "Accept"}  # one URL, two answers: a cache in front keeps them apart
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("viewer/", status_code=307, headers=vary)
    return JSONResponse(
        headers=vary,
        content={
            "service": "medcodec",
            "version": __version__,
            "coding_revision": CODING_REVISION,
            "viewer": "viewer/",
            "dicomweb": "dicomweb/studies",
            "wado_uri": "wado",
            "archive": "studies/{StudyInstanceUID}/archive.zip?preset=diagnostic",
            "health": "health",
        },
    )


async def _health(request: Request) -> JSONResponse:
    state = request.app.state
    pool: LivePool = state.pool
    refresher: Refresher | None = getattr(state, "refresher", None)
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "coding_revision": CODING_REVISION,  # the rules lossy copies are made by (docs/delivery.md, "Upgrades")
            "live_processes": pool.processes,
            "live_streams": pool.active,
            "live_in_flight": pool.in_flight,
            "read_ahead_bytes": pool.read_ahead.held,
            "live_completed": pool.completed,
            "live_cancelled": pool.cancelled,
            "dimse_port": getattr(state, "dimse_port", None),
            "dimse_tls_port": getattr(state, "dimse_tls_port", None),
            "precompute_pending": len(refresher.pending()) if refresher is not None else None,
            "precompute_completed": refresher.completed if refresher is not None else None,
            "precompute_failed": refresher.failed if refresher is not None else None,
            "precompute_retrying": len(refresher.retrying()) if refresher is not None else None,
        }
    )


def create_app(settings: Settings, *, store: Any = None) -> Starlette:
    """The application serving ``settings.store``.

    Parameters
    ----------
    settings
        What to serve and how (:class:`.settings.Settings`).
    store
        An open :class:`~medcodec.delivery.store.Store` to use instead of opening ``settings.store``.

    Returns
    -------
    starlette.applications.Starlette
        Run it with uvicorn; the store opens (and the DIMSE SCP starts) in its lifespan.
    """
    from . import archives, dicomweb, wado_uri

    routes: list[BaseRoute] = [Route("/", _index, methods=["GET"]), Route("/health", _health, methods=["GET"])]
    routes += dicomweb.routes()
    routes += wado_uri.routes()
    routes += archives.routes()
    with contextlib.suppress(ImportError):  # the viewer page ships separately (issue 13)
        from .viewer import routes as viewer_routes

        routes += list(viewer_routes())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from ..delivery import open_store

        quiet_accept_errors(asyncio.get_running_loop())  # EMFILE on accept: one line per interval
        own = store is None
        app.state.store = open_store(settings.store, catalog=settings.catalog, create=True) if own else store
        app.state.settings = settings
        catalog = app.state.store.catalog
        outdated = await run_in_threadpool(partial(catalog.outdated_archives, CODING_REVISION, dropped_too=False))
        if outdated:  # a store an older medcodec made: served live meanwhile
            log.warning(
                "%d study archive(s) of %d study(ies) are not pre-computed under this medcodec's coding rules "
                "(revision %d) and are served live; run `medcodec ingest --refresh --store %s` to make them again",
                len(outdated), len({study for study, _ in outdated}), CODING_REVISION, settings.store,
            )  # fmt: skip
        dropped = set(await run_in_threadpool(catalog.outdated_archives, CODING_REVISION)) - set(outdated)
        if dropped:  # instances arrived or were deleted since (blamed on the coding rules until 2026-12-03: an audit)
            log.warning(
                "%d study archive(s) of %d study(ies) wait to be pre-computed again since their instances changed "
                "and are served live (studies STOW-RS or C-STORE changed are queued now; the others: "
                "`medcodec ingest --refresh --store %s`)",
                len(dropped), len({study for study, _ in dropped}), settings.store,
            )  # fmt: skip
        # the encoder processes read originals from the store's location: started and warmed up now
        app.state.pool = LivePool(
            settings.live_workers,
            max_streams=settings.max_live_streams,
            window=settings.live_window,
            **({} if settings.read_ahead_bytes is None else {"read_ahead_bytes": settings.read_ahead_bytes}),
            processes=settings.live_processes,
            objects_url=app.state.store.objects.url,
        )
        await run_in_threadpool(app.state.pool.start)
        # studies that STOW-RS / C-STORE bring instances to: pre-computed again in the background
        refresher = (
            Refresher(
                app.state.store,
                executor=app.state.pool.job_executor(),
                quiet=settings.precompute_quiet,
                catch_up=True,
            )
            if settings.precompute_received
            else None
        )
        app.state.refresher = refresher
        scps: list[Any] = []
        try:
            if settings.dimse_port is not None or settings.dimse_tls_port is not None:
                from .dicom_tls import client_context, server_context
                from .dimse import start_scp

                tls_peers = {}
                if settings.dimse_tls_peers:
                    context = client_context(settings.tls_certfile, settings.tls_keyfile, settings.dimse_tls_ca)
                    tls_peers = {ae: context for ae in settings.dimse_tls_peers}
                listeners: list[tuple[int | None, Any]] = [(settings.dimse_port, None)]
                if settings.dimse_tls_port is not None:  # (settings checked that the certificate is there)
                    listeners.append(
                        (settings.dimse_tls_port, server_context(str(settings.tls_certfile), str(settings.tls_keyfile),
                                                                 settings.dimse_tls_ca))
                    )  # fmt: skip
                for port, tls in listeners:
                    if port is None:
                        continue
                    scp = start_scp(
                        app.state.store,
                        port=port,
                        ae_title=settings.ae_title,
                        host=settings.host,
                        on_stored=refresher.notify if refresher is not None else None,
                        peers={ae: (peer_host, peer_port) for ae, peer_host, peer_port in settings.dimse_peers},
                        pool=app.state.pool,
                        timeout=settings.dimse_timeout,
                        tls=tls,
                        tls_peers=tls_peers,
                    )
                    scps.append(scp)
                    setattr(app.state, "dimse_port" if tls is None else "dimse_tls_port", scp.port)
            yield
        finally:
            for scp in scps:
                scp.stop()
            if refresher is not None:  # stop it first, so that it queues nothing more on the pool
                refresher.close(timeout=0)
            app.state.pool.close()  # cancels a pre-computation's queued tasks: it ends, logged
            if refresher is not None:
                refresher.close(timeout=5)
            if own:
                app.state.store.close()

    app = Starlette(routes=routes, exception_handlers=exception_handlers(), lifespan=lifespan)
    app.state.settings = settings
    app.state.dimse_port = None
    app.state.dimse_tls_port = None
    app.state.refresher = None
    app.add_middleware(_BearerAuth, token=settings.token)
    app.add_middleware(CachePolicy, private=settings.token is not None)  # outside the token check: 401s too
    app.add_middleware(_StoppingAnswer)
    if settings.token is None:  # a page of another site under a name rebound to 127.0.0.1 (.security)
        app.add_middleware(HostCheck, public_url=settings.public_url)
    app.add_middleware(SecurityHeaders)
    if settings.cors_origins:  # outermost: preflights answered before the token check, errors carry the headers
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Accept", "Content-Type", "Range", "If-None-Match", "If-Range", "If-Match"],
            expose_headers=[
                "ETag",
                "Content-Range",
                "Content-Length",
                "Accept-Ranges",
                "Content-Disposition",
                "Content-Location",
            ],
            max_age=600,
        )
    return app
