"""ZIP archives of a study or a series, pre-computed (CDN-ready) or compressed on the fly.

``GET /studies/{study}/archive.zip?preset=NAME[&live=1]`` and
``GET /studies/{study}/series/{series}/archive.zip?...`` (``HEAD`` too):

* **Pre-computed** (the store has the archive and ``live`` is not set): served from storage
  with ``Content-Length``, a strong ``ETag`` (the archive's sha256), ``Accept-Ranges: bytes``,
  ``Range`` → 206 (several ranges → ``multipart/byteranges``, overlapping ones coalesced; none
  satisfiable → 416; a unit other than ``bytes`` ignored), ``If-Match`` → 412 unless it names the
  ETag, ``If-Range`` (the ETag), ``If-None-Match`` → 304, ``Last-Modified`` (when the archive was
  built) and ``If-Modified-Since`` → 304 when no ``If-None-Match`` is sent. A study changes
  (ingest, STOW-RS, C-STORE, ``store delete``), so the URL is not immutable: ``Cache-Control:
  public, no-cache`` (a CDN keeps the bytes and revalidates each use with the ETag: 304), and
  ``Content-Location`` names the same bytes at a versioned URL, ``...&version=<sha256>``, which is
  ``immutable`` (once the archive changes, that version is 404). Caching rules: :mod:`.caching`.
  ``X-Medcodec-Archive: precomputed``.
* **Assembled** (``preset=original`` not pre-computed, ``live`` not set): the stored files in a
  ZIP of stored entries, laid out from the catalog (:mod:`medcodec.delivery.assembled`), served
  as a pre-computed archive is (length, ETag, ranges, conditions, caching) without a copy. Its
  ETag is a strong validator but not the ZIP's sha256: ``X-Medcodec-Archive: assembled``. An
  older store whose files lack a recorded CRC-32 has them read and recorded first (up to
  :data:`medcodec.delivery.store.ASSEMBLE_CRC_BUDGET` bytes; past it, live).
* **Live** (not computed yet, or ``live=1``): when the study is being pre-computed after
  STOW-RS / C-STORE (:mod:`medcodec.delivery.refresher`) the request first waits for it, up to
  ``precompute_wait`` seconds; otherwise, compressed on the fly and streamed by
  :mod:`medcodec.delivery.live` (chunked, ``Cache-Control: no-store``, no length or ETag,
  ``X-Medcodec-Archive: live``; ``If-None-Match: *`` → 304, ``If-Match`` other than ``*`` →
  412; ``version=`` → 404). Closing the connection cancels the pipeline.

Default preset: ``diagnostic``. UIDs are validated before anything touches the store.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator
from email.utils import formatdate, parsedate_to_datetime
from typing import Any, BinaryIO
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..errors import CodecError, DeliveryError, InvalidInputError, NotFoundError
from .caching import IMMUTABLE, REVALIDATE, etag_in, if_match_fails
from .errors import error_response
from .http import base_url, multipart_end, multipart_part_header, new_boundary, parse_range

__all__ = ["routes", "ClosingStreamingResponse"]

_CHUNK = 1 << 20
_VERSION = re.compile(r"(?:a-)?[0-9a-f]{64}")  # a pre-computed archive's sha256, an assembled one's ETag


class ClosingStreamingResponse(StreamingResponse):
    """A StreamingResponse that always closes its body iterator (client gone, error, or done).

    Starlette cancels the sending task on disconnect; a generator suspended at ``yield``
    would otherwise wait for the garbage collector before its ``finally`` cancels the work.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


def _flag(value: str | None) -> bool:
    if value is None:
        return False
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise InvalidInputError(f"live={value!r}: expected 1/0, true/false")


def _preset_name(request: Request) -> str:
    from ..delivery.presets import PRESETS

    name = request.query_params.get("preset", "diagnostic")
    if name not in PRESETS:
        raise NotFoundError(f"preset {name!r} is unknown, expected one of {sorted(PRESETS)}")
    return name


async def _archive(request: Request) -> Response:
    from ..delivery.uids import validate_uid

    study = validate_uid(request.path_params["study"], what="Study Instance UID")
    series = request.path_params.get("series")
    if series is not None:
        series = validate_uid(series, what="Series Instance UID")
    preset = _preset_name(request)
    live = _flag(request.query_params.get("live"))
    versions = request.query_params.getlist("version")
    version = versions[0] if versions else None
    if version is not None and (len(versions) > 1 or not _VERSION.fullmatch(version)):
        raise InvalidInputError(
            f"version={version!r}: expected one archive ETag, 64 lower-case hex digits ('a-' first when assembled)"
        )
    if version is not None and live:
        raise InvalidInputError("version= names a pre-computed archive; it does not go with live=1")
    store = request.app.state.store
    record = None if live else await run_in_threadpool(store.archive, study, series, preset)
    refresher = getattr(request.app.state, "refresher", None)
    if (
        record is None
        and not live
        and refresher is not None
        and refresher.busy(study)
        and refresher.computes(preset, study)
    ):
        # the study just received instances (STOW-RS, C-STORE) and is being pre-computed: wait for
        # it rather than stream live what will be ready in a moment (then with ETag and Range)
        deadline = time.monotonic() + request.app.state.settings.precompute_wait
        while refresher.busy(study) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # no thread held while waiting (many clients may wait)
        record = await run_in_threadpool(store.archive, study, series, preset)
    if record is not None and store.objects.local and not await run_in_threadpool(_intact, store, record):
        # lost or damaged behind the catalog's back: its bytes cannot be sent (a 200 with a length
        # and none of its bytes, an outside audit); the originals can, so this answer is made live
        if version is not None:
            raise DeliveryError(
                f"archive {record.path} (version {version}) is missing or damaged in the store: "
                "`medcodec store check` names the damaged objects; ask without version= for a live archive"
            )
        logging.getLogger("medcodec.service").warning(
            "archive %s is missing or damaged in the store (`medcodec store check`): answered live", record.path
        )
        record = None
    if record is None and not live and preset == "original":  # the stored files as they are: no copy needed
        record = await run_in_threadpool(store.original_archive, study, series)
    name = f"{study}{'_' + series if series else ''}_{preset}.zip"
    disposition = f'attachment; filename="{name}"'
    if version is not None and (record is None or version != record.etag):
        now = f"the current one is {record.etag}" if record is not None else "it is not pre-computed now"
        raise NotFoundError(f"archive version {version!r} of {name} is gone ({now}): ask without version=")
    if record is not None:
        return await _precomputed(request, store, record, disposition, versioned=version is not None)
    from ..delivery.live import live_archive

    records = await run_in_threadpool(store.instances, study, series)  # NotFoundError -> 404 before streaming
    if if_match_fails(request.headers.get("if-match"), None):  # a live archive has no ETag (RFC 9110 §13.1.1)
        return _precondition_failed(request.headers["if-match"])
    headers = {"Content-Disposition": disposition, "Cache-Control": "no-store", "X-Medcodec-Archive": "live"}
    if (request.headers.get("if-none-match") or "").strip() == "*":
        # RFC 9110 §13.1.2: "*" is false when a current representation exists, as here (no ETag needed)
        return Response(status_code=304, headers={"Cache-Control": "no-store"})
    if request.method == "HEAD":
        head = Response(status_code=200, headers=headers, media_type="application/zip")
        del head.headers["content-length"]  # the length is not known before the archive is made (not 0)
        return head
    body = live_archive(
        store, records, preset, request.app.state.pool, series_only=series is not None, use_renditions=not live
    )  # live=1 encodes everything now
    return ClosingStreamingResponse(await primed(body), headers=headers, media_type="application/zip")


async def primed(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Produce the first chunk before the status line goes out, so that a failure on the first
    instance (the usual case: a bad preset for the data) is a JSON error, not a cut stream."""
    try:
        first = await body.__anext__()
    except StopAsyncIteration:
        first = b""
    except BaseException:
        await body.aclose()  # type: ignore[attr-defined]
        raise

    async def rest() -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
            async for chunk in body:
                yield chunk
        finally:
            await body.aclose()  # type: ignore[attr-defined]

    return rest()


def _http_date(header: str | None) -> int | None:
    """An HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime forms, all
    GMT) as seconds since the epoch; ``None`` when absent or malformed (the condition is ignored)."""
    if header is None:
        return None
    try:
        when = parsedate_to_datetime(header.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # asctime carries no zone: it is GMT
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp())


def _if_range_holds(if_range: str, etag: str, built: int | None) -> bool:
    """``If-Range`` (RFC 9110 §13.1.5): the strong ETag, or the exact Last-Modified date when it
    is strong (``built``: its second is over, see :func:`_precomputed`; ``None``: not yet)."""
    value = if_range.strip()
    if value.startswith(('"', 'W/"')):
        return value == etag
    return built is not None and _http_date(value) == built


def _precondition_failed(if_match: str, etag: str | None = None) -> Response:
    detail = f"If-Match {if_match} does not match the archive" + (f" (now {etag})" if etag else " (live: no ETag)")
    return error_response(412, "PreconditionFailedError", detail)


def _versioned_url(request: Request, etag: str) -> str:
    """This archive's URL with ``version=<etag>`` (other query parameters kept, ``live`` has none):
    the request's own path (relative, so a CDN or proxy in front keeps it for its own), or under
    ``--public-url`` when one is set (a proxy serving the server under a path prefix: the relative
    path lacked the prefix and led to a 404 outside it; an outside audit, 2026-12-03)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "version"]
    query.append(("version", etag))
    path = request.url.path
    if request.app.state.settings.public_url:
        root = str(request.scope.get("root_path", "") or "")
        inside = path[len(root) :] if root and path.startswith(root) else path
        return f"{base_url(request)}{inside}?{urlencode(query)}"
    return f"{path}?{urlencode(query)}"


def _intact(store: Any, record: Any) -> bool:
    """Whether a pre-computed archive's file is there at its catalog size (an assembled one is
    checked file by file when answered, :meth:`AssembledArchive.check_files`)."""
    from ..delivery.assembled import AssembledArchive

    if isinstance(record, AssembledArchive):
        return True
    try:
        return bool(store.objects.size(record.path) == int(record.size))
    except (OSError, CodecError):
        return False


async def _precomputed(request: Request, store: Any, record: Any, disposition: str, *, versioned: bool) -> Response:
    from ..delivery.assembled import AssembledArchive

    assembled = isinstance(record, AssembledArchive)  # laid out from the stored files (preset=original)
    etag = f'"{record.etag}"'
    size = int(record.size)
    headers = {
        "ETag": etag,
        "Cache-Control": IMMUTABLE if versioned else REVALIDATE,
        "Accept-Ranges": "bytes",
        "Content-Disposition": disposition,
        "X-Medcodec-Archive": "assembled" if assembled else "precomputed",
    }
    if not versioned:
        headers["Content-Location"] = _versioned_url(request, record.etag)
    built = int(record.created_at)
    # RFC 9110 §8.8.2.2: a date names one representation only once its second is over (a study can
    # change twice in a second, STOW after STOW: a resume by If-Range date then spliced two
    # archives, and If-Modified-Since answered 304 for a changed one; an outside audit, 2026-12-03).
    # Until then no Last-Modified is sent and the date conditions are not met.
    dated = built < int(time.time())
    if dated:
        headers["Last-Modified"] = formatdate(built, usegmt=True)
    if_match = request.headers.get("if-match")
    if if_match_fails(if_match, etag):  # evaluated first (RFC 9110 §13.2.2)
        assert if_match is not None
        return _precondition_failed(if_match, etag)
    unmodified = _http_date(request.headers.get("if-unmodified-since"))
    if if_match is None and unmodified is not None and built > unmodified:
        return error_response(
            412, "PreconditionFailedError", f"the archive was built after {formatdate(unmodified, usegmt=True)}"
        )
    if_none_match = request.headers.get("if-none-match")
    since = _http_date(request.headers.get("if-modified-since"))
    if etag_in(if_none_match, etag, weak=True) or (
        if_none_match is None and since is not None and dated and built <= since
    ):
        kept = ("ETag", "Cache-Control", "Last-Modified", "Content-Location")  # RFC 9110 §15.4.5
        return Response(status_code=304, headers={k: headers[k] for k in kept if k in headers})
    ranges = None
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if range_header is not None and (if_range is None or _if_range_holds(if_range, etag, built if dated else None)):
        ranges = parse_range(range_header, size)  # 400 malformed / 416 unsatisfiable / None: not bytes, ignored
    head = request.method == "HEAD"
    if assembled and not head and size and store.objects.local:  # its files there, as catalogued? (a stat each)
        await run_in_threadpool(record.check_files, store.objects, ranges or [(0, size - 1)])
    if ranges is None:
        headers["Content-Length"] = str(size)
        body: AsyncIterator[bytes] | None = (
            None if head else _read_ranges(store, record, [(0, size - 1)] if size else [])
        )
        return _respond(200, headers, "application/zip", body)
    if len(ranges) == 1:
        start, end = ranges[0]
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)
        return _respond(206, headers, "application/zip", None if head else _read_ranges(store, record, ranges))
    boundary = new_boundary()
    parts = [
        (multipart_part_header(boundary, "application/zip", {"Content-Range": f"bytes {s}-{e}/{size}"}), s, e)
        for s, e in ranges
    ]
    length = sum(len(h) + (e - s + 1) + 2 for h, s, e in parts) + len(multipart_end(boundary))
    headers["Content-Length"] = str(length)
    body = None if head else _read_multipart(store, record, parts, boundary)
    return _respond(206, headers, f"multipart/byteranges; boundary={boundary}", body)


def _respond(status: int, headers: dict[str, str], media_type: str, body: AsyncIterator[bytes] | None) -> Response:
    if body is None:
        return Response(status_code=status, headers=headers, media_type=media_type)
    return ClosingStreamingResponse(body, status_code=status, headers=headers, media_type=media_type)


async def _read_ranges(store: Any, record: Any, ranges: list[tuple[int, int]]) -> AsyncGenerator[bytes, None]:
    fh: BinaryIO = await run_in_threadpool(store.open_archive, record)
    try:
        for start, end in ranges:
            await run_in_threadpool(fh.seek, start)
            left = end - start + 1
            while left > 0:
                chunk = await run_in_threadpool(fh.read, min(_CHUNK, left))
                if not chunk:
                    raise NotFoundError(f"archive {record.path} is shorter than its catalog size {record.size}")
                left -= len(chunk)
                yield chunk
    finally:
        fh.close()


async def _read_multipart(
    store: Any, record: Any, parts: list[tuple[bytes, int, int]], boundary: str
) -> AsyncIterator[bytes]:
    for header, start, end in parts:
        yield header
        inner = _read_ranges(store, record, [(start, end)])
        try:
            async for chunk in inner:
                yield chunk
        finally:
            await inner.aclose()
        yield b"\r\n"
    yield multipart_end(boundary)


def routes() -> list[Route]:
    """The archive routes."""
    return [
        Route("/studies/{study}/archive.zip", _archive, methods=["GET", "HEAD"]),
        Route("/studies/{study}/series/{series}/archive.zip", _archive, methods=["GET", "HEAD"]),
    ]
