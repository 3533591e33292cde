"""WADO-URI (PS3.18 chapter 9, the URI service, once "WADO"): ``GET /wado?requestType=WADO&...``.

The single-object retrieve that EHR links, report viewers and older PACS clients still use::

    GET /wado?requestType=WADO&studyUID=S&seriesUID=SE&objectUID=I
        [&contentType=image/jpeg|image/png|application/dicom[,...]]   first one producible wins
        [&transferSyntax=UID]        application/dicom only: default Explicit VR Little Endian (with
                                     preset=, the preset's own syntax), ``*`` as stored,
                                     1.2.840.10008.1.2.4.51 the diagnostic JPEG ...
        [&preset=NAME]               medcodec's: the preset's rendition (DICOM or rendered image)
        [&frameNumber=N] [&windowCenter=C&windowWidth=W] [&rows=R] [&columns=C]
        [&region=x1,y1,x2,y2]        fractions 0..1 of the image, cropped before rows / columns
        [&imageQuality=1..100]       JPEG only

``contentType`` absent: ``image/jpeg`` for an object with pixels, ``application/dicom`` for the
rest (reports, plans). The DICOM answer is the same file WADO-RS would send (one
:func:`medcodec.delivery.live.instance_bytes`), the image answer the same rendering as WADO-RS
``/rendered`` (:func:`.dicomweb.render_frame`). Not supported, refused with 400 rather than
silently ignored: ``anonymize=yes`` (nothing here de-identifies), ``presentationUID`` (no
presentation states are applied). ``annotation`` and ``charset`` are accepted and ignored: no
text is burnt into images and the DICOM answer keeps its own Specific Character Set.

Errors come from the one hierarchy (:mod:`medcodec.errors`) and are mapped to HTTP in
:mod:`.errors`: a missing or malformed parameter 400, an unknown object 404, a content type or
transfer syntax we cannot make 406.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..delivery.live import AS_PRESET
from ..errors import InvalidInputError, NotAcceptableError, NotFoundError
from .dicomweb import EXPLICIT_VR_LE, int_value, render_frame

__all__ = ["routes", "IMAGE_TYPES"]

#: Rendered media types, and the DICOM one.
IMAGE_TYPES = ("image/jpeg", "image/png")
DICOM_TYPE = "application/dicom"
_MAX_SIDE = 4096


def _param(request: Request, name: str) -> str | None:
    """One query parameter (names are case-sensitive in PS3.18; a repeated one is an error)."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise InvalidInputError(f"{name} is given {len(values)} times")
    return values[0] if values else None


def _int(request: Request, name: str, low: int, high: int) -> int | None:
    return int_value(name, _param(request, name), None, minimum=low, maximum=high)


def _float(request: Request, name: str) -> float | None:
    text = _param(request, name)
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidInputError(f"{name}={text!r}: expected a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInputError(f"{name}={text!r}: expected a finite number")
    return value


def _region(request: Request) -> tuple[float, float, float, float] | None:
    text = _param(request, "region")
    if text is None or text == "":
        return None
    try:
        x1, y1, x2, y2 = (float(v) for v in text.split(","))
    except ValueError:
        raise InvalidInputError(f"region={text!r}: expected x1,y1,x2,y2 (fractions 0..1 of the image)") from None
    if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
        raise InvalidInputError(f"region={text!r}: expected 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1")
    return x1, y1, x2, y2


def _content_types(request: Request, has_pixels: bool) -> list[str]:
    text = _param(request, "contentType")
    if text is None or text.strip() == "":
        return ["image/jpeg" if has_pixels else DICOM_TYPE]
    out = []
    for item in text.split(","):
        media = item.split(";")[0].strip().lower()
        if media in ("*/*", "image/*"):
            media = "image/jpeg" if has_pixels else DICOM_TYPE
        out.append(media)
    return out


async def _wado(request: Request) -> Response:
    from ..delivery.presets import PRESETS
    from ..delivery.uids import validate_uid

    request_type = _param(request, "requestType")
    if request_type != "WADO":
        raise InvalidInputError(f"requestType={request_type!r}: expected WADO")
    uids = {}
    for name, what in (("studyUID", "Study"), ("seriesUID", "Series"), ("objectUID", "SOP")):
        value = _param(request, name)
        if not value:
            raise InvalidInputError(f"{name} is required")
        uids[name] = validate_uid(value, what=f"{what} Instance UID")
    if (_param(request, "anonymize") or "").lower() == "yes":
        raise InvalidInputError("anonymize=yes is not supported: nothing here de-identifies")
    if _param(request, "presentationUID") or _param(request, "presentationSeriesUID"):
        raise InvalidInputError("presentationUID: presentation states are not applied here")
    preset = _param(request, "preset")
    if preset is not None and preset not in PRESETS:
        raise NotFoundError(f"preset {preset!r} is unknown, expected one of {sorted(PRESETS)}")

    store = request.app.state.store
    records = await run_in_threadpool(store.instances, uids["studyUID"], uids["seriesUID"], uids["objectUID"])
    record = records[0]
    has_pixels = bool(record.rows)
    wanted = _content_types(request, has_pixels)
    for media in wanted:
        if media == DICOM_TYPE:
            return await _dicom(request, record, preset)
        if media in IMAGE_TYPES and has_pixels:
            return await _image(request, record, media, preset)
    raise NotAcceptableError(
        f"contentType {', '.join(wanted)} cannot be produced for this object "
        f"({'an image' if has_pixels else 'no pixel data'}): available are "
        + (", ".join((*IMAGE_TYPES, DICOM_TYPE)) if has_pixels else DICOM_TYPE)
    )


async def _dicom(request: Request, record: Any, preset: str | None) -> Response:
    from ..delivery.live import instance_bytes
    from ..delivery.uids import validate_uid

    ts = _param(request, "transferSyntax") or None  # given empty: as if absent (as before 2026-12-04)
    if ts is None:  # PS3.18's default, or with preset= that preset's own rendition (in its syntax)
        ts = EXPLICIT_VR_LE if preset is None else AS_PRESET
    elif ts != "*":
        validate_uid(ts, what="transfer syntax UID")
    store, pool = request.app.state.store, request.app.state.pool
    data, got = await run_in_threadpool(instance_bytes, store, record, ts, preset, True, pool)
    headers = {"Content-Disposition": f'attachment; filename="{record.sop_uid}.dcm"', "X-Transfer-Syntax": got}
    if ts == AS_PRESET:  # the preset's own answer (an explicit syntax may have been met without it)
        headers["X-Preset"] = str(preset)
    return Response(data, media_type=DICOM_TYPE, headers=headers)


async def _image(request: Request, record: Any, media: str, preset: str | None) -> Response:
    if _param(request, "transferSyntax"):
        raise InvalidInputError("transferSyntax applies to contentType=application/dicom only")
    center, width = _float(request, "windowCenter"), _float(request, "windowWidth")
    if (center is None) != (width is None):
        raise InvalidInputError("windowCenter and windowWidth go together")
    if width is not None and width <= 0:
        raise InvalidInputError(f"windowWidth={width:g}: expected > 0")
    window = None if center is None or width is None else (center, width, "linear")
    frames = record.frames or 1
    number = _int(request, "frameNumber", 1, 100_000) or 1
    if number > frames:
        raise NotFoundError(f"frame {number} does not exist: the object has {frames} frame(s)")
    rows, columns = _int(request, "rows", 1, _MAX_SIDE), _int(request, "columns", 1, _MAX_SIDE)
    viewport = None if rows is None and columns is None else (columns or _MAX_SIDE, rows or _MAX_SIDE)
    quality = _int(request, "imageQuality", 1, 100) or 90
    region = _region(request)
    store, pool = request.app.state.store, request.app.state.pool
    data, ts = await run_in_threadpool(
        render_frame, store, record, number, window, media, quality, viewport, preset, pool, region
    )
    return Response(data, media_type=media, headers={"X-Preset": preset or "original", "X-Transfer-Syntax": ts})


def routes() -> list[Route]:
    """The WADO-URI route: ``GET /wado``."""
    return [Route("/wado", _wado, methods=["GET"])]
