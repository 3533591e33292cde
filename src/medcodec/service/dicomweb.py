"""DICOMweb (PS3.18) under ``/dicomweb``: QIDO-RS search, WADO-RS retrieve, STOW-RS store.

QIDO-RS (``application/dicom+json``)::

    GET /dicomweb/studies | /series | /instances
    GET /dicomweb/studies/{study}/series | /studies/{study}/instances | /studies/{study}/series/{series}/instances
        ?<keyword or tag>=value ... &limit=N&offset=N&fuzzymatching=true&includefield=...

WADO-RS::

    GET /dicomweb/studies/{study}[/series/{series}[/instances/{sop}]]      multipart/related; type="application/dicom"
                                        (an instance also single part: Accept: application/dicom)
    GET .../metadata                                                       application/dicom+json
                                        (binary values over 768 bytes, pixel data included, as BulkDataURI)
    GET /dicomweb/studies/{s}/series/{se}/instances/{sop}/bulkdata/{path}  one of those values:
                                        multipart/related; type="application/octet-stream" or single part
                                        (an Encapsulated Document also as its MIME type, e.g. application/pdf)
    GET /dicomweb/studies/{s}/series/{se}/instances/{sop}/frames/{1,2,..}
                                        multipart/related; type=application/octet-stream
                                        (or image/jpeg, image/jls, image/jp2, image/jphc)
    GET .../instances/{sop}/rendered, .../frames/{n}/rendered              image/png | image/jpeg, ?window=c,w[,fn],
                                                                            ?viewport=w,h, ?quality=, ?preset=
    GET .../studies/{s}[/series/{se}[/instances/{i}[/frames/{n}]]]/thumbnail  the middle image, 128x128 JPEG

``?preset=NAME`` on ``/rendered`` and ``/thumbnail`` (a medcodec parameter, not PS3.18's) renders
that preset's rendition (pre-computed, else encoded now) instead of the original, so a client sees
what ``diagnostic`` or ``preview`` does to an image, colour included; ``X-Preset`` and
``X-Transfer-Syntax`` say what was rendered (an object the preset passes through renders as stored).

Transfer syntax negotiation (PS3.18 §8.7.3): the ``transfer-syntax`` parameter of the Accept
media ranges, best ``q`` first. ``*`` gives each instance as stored; no parameter means
Explicit VR Little Endian (the PS3.18 default; compressed originals are decompressed), and with
``?preset=NAME`` that preset's own rendition of each instance, in the syntax it codes it in
(``.51`` for a 12-bit CT under ``diagnostic``, HTJ2K lossless for a PET, the original for what
it passes through; the part's ``transfer-syntax`` says which); a
preset's syntax (``1.2.840.10008.1.2.4.51`` for ``diagnostic``...) gives that preset's rendition
(pre-computed, else encoded on the spot); ``?preset=NAME`` picks among presets sharing a
syntax; another lossless syntax the registry writes here (JPEG-LS, JPEG 2000, RLE, HTJ2K RPCL) is
coded on the spot by the ``lossless`` preset, bit-exact. Nothing producible → 406. A study or
series retrieve whose instance cannot take the syntax (colour, reports: the preset passes them
through) sends that part as it is, with its own ``transfer-syntax`` in the part's Content-Type.
``HEAD`` on a study or series answers the status and Content-Type without producing an
instance (on one instance it produces it: only then is a 406 known).

STOW-RS: ``POST /dicomweb/studies[/{study}]``, ``multipart/related; type="application/dicom"``,
each part ingested like ``medcodec ingest`` (:meth:`Store.ingest_bytes`). Body over
``--max-upload`` → 413 (nothing stored); a body of another type → 415; a body with no DICOM
part → 400 (nothing stored). Response: the PS3.18 §10.5.3 store instances response (DICOM
JSON) with ReferencedSOPSequence and FailedSOPSequence; 200 all stored, 202 some failed, 409
none stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..delivery.live import AS_PRESET
from ..errors import (
    CodecError,
    InvalidInputError,
    NotAcceptableError,
    NotDicomError,
    NotFoundError,
    OutOfResourcesError,
    PayloadTooLargeError,
    StoreFullError,
)
from ..render import WINDOW_FUNCTIONS, window_to_8bit
from .archives import ClosingStreamingResponse, primed
from .connections import BODY_MIN_RATE
from .dimse_status import (
    CONFLICT_COMMENT,
    PROCESSING_FAILURE,
    RESOURCE_FAILURE,
    failure_status,
    refusal_comment,
)
from .errors import RETRY_AFTER, RequestTimeoutError, UnsupportedMediaTypeError
from .http import (
    MediaRange,
    base_url,
    iter_multipart,
    multipart_end,
    multipart_part_header,
    new_boundary,
    parse_accept,
    parse_decimal,
    parse_media_type,
)

__all__ = ["routes", "render_frame", "int_value", "DICOM_JSON", "EXPLICIT_VR_LE", "FRAME_MEDIA_TYPES"]

DICOM_JSON = "application/dicom+json"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
#: Bulk (frame) media type of each encapsulated transfer syntax (PS3.18 Table 8.7.3-2).
FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}
#: Transfer syntax of each image media type when a request names none (PS3.18 Table 8.7.3-5,
#: the "(D)" rows): JPEG Lossless for image/jpeg, never a lossy syntax (it was .50 until 2026-12-02:
#: a client asking image/jpeg got lossy frames it had not asked for; an outside audit with OHIF).
DEFAULT_FRAME_SYNTAX = {
    "image/jpeg": "1.2.840.10008.1.2.4.70",
    "image/jls": "1.2.840.10008.1.2.4.80",
    "image/jp2": "1.2.840.10008.1.2.4.90",
    "image/jphc": "1.2.840.10008.1.2.4.201",
    "image/dicom-rle": "1.2.840.10008.1.2.5",
}
#: Names clients send for the media types above: the ones PS3.18 used before IANA registration
#: (dicomweb-client sends image/x-jls, older versions image/x-dicom-rle) and OHIF 3's
#: ``image/dicom+jpeg``; answered under the name asked for.
MEDIA_ALIASES = {"image/x-dicom-rle": "image/dicom-rle", "image/x-jls": "image/jls", "image/dicom+jpeg": "image/jpeg"}
_RESERVED = {"limit", "offset", "fuzzymatching", "includefield", "preset"}


# --------------------------------------------------------------------------- helpers


def _uid(request: Request, key: str, what: str) -> str | None:
    from ..delivery.uids import validate_uid

    value = request.path_params.get(key)
    return None if value is None else validate_uid(value, what=what)


def int_value(name: str, value: str | None, default: int | None, *, minimum: int = 0, maximum: int) -> int | None:
    """A query parameter's integer in ``minimum..maximum`` (``default`` when absent or empty), else
    :class:`InvalidInputError` naming it (DICOMweb and WADO-URI parameters alike)."""
    if value is None or value == "":
        return default
    number = parse_decimal(value)
    if number is None or not minimum <= number <= maximum:
        raise InvalidInputError(f"{name}={value!r}: expected an integer {minimum}..{maximum}")
    return number


def _int_param(request: Request, name: str, default: int | None, *, maximum: int) -> int | None:
    return int_value(name, request.query_params.get(name), default, maximum=maximum)


def _query(request: Request) -> tuple[list[tuple[str, str]], list[str]]:
    """The matching keys of a QIDO-RS request (a key repeated matches any of its values) and the
    keys medcodec does not match on, which are ignored (PS3.18 §8.3.4.1) and named in a Warning."""
    from ..delivery.catalog import supported_keys

    return supported_keys((k, v) for k, v in request.query_params.multi_items() if k.lower() not in _RESERVED)


def _warning_299(text: str) -> str:
    """A ``Warning: 299`` header value (RFC 7234 §5.5; PS3.18 §8.3.4.1 and §8.3.4.4), ASCII only."""
    clean = text.encode("ascii", "backslashreplace").decode().replace('"', "'")
    clean = "".join(c if " " <= c <= "~" else "?" for c in clean)  # no CR/LF: a key is the client's text
    return f'299 medcodec "{clean[:1000]}"'


#: QIDO-RS, metadata and the STOW-RS response are DICOM JSON only (PS3.18 §8.7.8.1: anything else
#: asked for, DICOM XML included, is 406)
_QIDO_TYPES = {"application/dicom+json", "application/json", "*/*", "application/*"}


def _require_dicom_json(request: Request, what: str) -> None:
    """406 unless the Accept header takes DICOM JSON (an absent header does): the answer of QIDO-RS,
    Retrieve Metadata and STOW-RS. Until 2026-12-05 only QIDO-RS checked; metadata and the STOW-RS
    response answered JSON to a client that had asked for DICOM XML only (an outside audit)."""
    accept = parse_accept(request.headers.get("accept"))
    if not any(m.type in _QIDO_TYPES for m in accept):
        raise NotAcceptableError(
            f"{what} answers application/dicom+json only; asked: {[m.type for m in accept] or 'nothing (q=0)'}"
        )


def _dicom_json(payload: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status, media_type=DICOM_JSON)


#: DICOM JSON answers larger than this are gzipped for a client that accepts it (a series' metadata
#: is ~6 kB an instance and repeats itself: 374 kB -> 6.9 kB for the 64-slice chest CT); smaller
#: ones are not worth the header
GZIP_MIN_BYTES = 4096


def _accepts_gzip(request: Request) -> bool:
    for item in request.headers.get("accept-encoding", "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and q[2:].strip() in ("0", "0.0", "0.00", "0.000"))
    return False


async def _dicom_json_answer(request: Request, payload: Any) -> Response:
    """A DICOM JSON answer (QIDO-RS, metadata), gzipped off the event loop when large and accepted."""
    response = _dicom_json(payload)
    response.headers["Vary"] = "Accept-Encoding"
    if len(response.body) < GZIP_MIN_BYTES or not _accepts_gzip(request):
        return response
    body = await run_in_threadpool(gzip.compress, bytes(response.body), 6)
    return Response(body, media_type=DICOM_JSON, headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})


def _preset_names_for(ts: str, wanted: str | None) -> list[str]:
    from ..delivery.live import presets_for_syntax

    return presets_for_syntax(ts, wanted)


def _default_frame_syntax(media: str, record: Any, preset: str | None) -> str | None:
    """The syntax frames asked as ``media`` without a transfer-syntax parameter come in:
    :data:`DEFAULT_FRAME_SYNTAX` when stored so or producible here; with ``?preset=`` whose own
    syntax of that type it is not, the preset's for the image (``image/jpeg`` under
    ``diagnostic``: .51, .50 for 8-bit samples); ``None`` when neither."""
    from ..delivery.presets import PRESETS

    default = DEFAULT_FRAME_SYNTAX[media]
    if default == record.transfer_syntax_uid or _producible(default, preset):
        return default
    if preset is not None and preset in PRESETS:
        own = PRESETS[preset].transfer_syntax_for(int(record.bits_stored or 16))
        if own is not None and FRAME_MEDIA_TYPES.get(own) == media:
            return own
    return None


def _producible(ts: str, preset: str | None) -> bool:
    from ..delivery.live import lossless_transcodes

    if ts == AS_PRESET:
        return preset is not None
    return ts in ("*", EXPLICIT_VR_LE) or bool(_preset_names_for(ts, preset)) or ts in lossless_transcodes(preset)


def _negotiate(
    accept: list[MediaRange], part_types: Iterable[str], preset: str | None, stored: Iterable[str] = ()
) -> list[tuple[str, bool]]:
    """The transfer syntaxes the Accept media ranges let us send (``*`` = as stored), in the client's
    order of preference, each with whether its range is a single part one (``application/dicom``
    without ``multipart/related``: PS3.18 §10.4.4 allows it for an instance resource only; for a
    study or series the caller answers multipart anyway). Only syntaxes medcodec produces at all, or
    that an instance asked for is ``stored`` in, are listed; whether an instance can take one is known
    when it is produced (a 12-bit image
    cannot be baseline ``.50``): the caller then tries the next (an outside audit, 2026-12-04: a
    406 for ``.50, .90`` where ``.90`` alone was sent)."""
    part_types = tuple(part_types)
    stored = frozenset(stored)
    # no syntax named: PS3.18's default (Explicit VR Little Endian), or with ?preset= that preset's own
    default = EXPLICIT_VR_LE if preset is None else AS_PRESET
    asked: list[str] = []
    out: list[tuple[str, bool]] = []
    for m in accept:
        inner = m.params.get("type", "").lower()
        # application/* covers application/dicom (RFC 9110 §12.5.1; a 406 until 2026-12-04): single part
        single = m.type in part_types or (m.type == "application/*" and "application/dicom" in part_types)
        if single or (m.type == "multipart/related" and (inner in part_types or inner == "application/*")):
            ts = m.params.get("transfer-syntax", default)
        elif m.type in ("*/*", "multipart/*") or (m.type == "multipart/related" and inner in ("", "*/*")):
            ts = m.params.get("transfer-syntax", default)
        else:
            continue
        asked.append(ts)
        if ts == AS_PRESET and "transfer-syntax" in m.params:  # the placeholder sent by a client: not a syntax
            continue
        if (ts in stored or _producible(ts, preset)) and all(ts != t for t, _ in out):
            out.append((ts, single))
    if not out:
        raise NotAcceptableError(
            f"cannot produce any of the requested transfer syntaxes {asked or [m.type for m in accept]}: "
            f"available are '*' (as stored), {EXPLICIT_VR_LE}, the presets' {_preset_syntaxes_values()} "
            f"and, losslessly, {_lossless_values()}"
        )
    return out


def _first_taken(store: Any, record: Any, choices: list[tuple[str, bool]], preset: str | None, pool: Any,
                 strict: bool) -> tuple[bytes, str, bool]:  # fmt: skip
    """``(file, syntax, single part)``: ``record`` in the first of ``choices`` it can take. When it takes
    none: with ``strict`` (one instance asked for) the first choice's :class:`NotAcceptableError`
    (a 406 that says why), else the instance as stored (a study or series retrieve: its part says
    which syntax, never a preset's lossy file in a syntax nobody asked for)."""
    from ..delivery.live import instance_bytes

    first: NotAcceptableError | None = None
    for ts, single_part in choices:
        try:
            data, got = instance_bytes(store, record, ts, preset, True, pool)
        except NotAcceptableError as exc:
            first = first or exc
            continue
        return data, got, single_part
    if strict:
        assert first is not None
        raise first
    data, got = instance_bytes(store, record, "*")
    return data, got, choices[0][1]


def _lossless_values() -> list[str]:
    from ..delivery.live import lossless_transcodes

    return sorted(set(lossless_transcodes()) - set(_preset_syntaxes_values()))


def _preset_syntaxes_values() -> list[str]:
    from ..delivery.live import preset_syntaxes

    return sorted({uid for uids in preset_syntaxes().values() for uid in uids})


def _preset_param(request: Request) -> str | None:
    name = request.query_params.get("preset")
    if name is None:
        return None
    from ..delivery.presets import PRESETS

    if name not in PRESETS:
        raise NotFoundError(f"preset {name!r} is unknown, expected one of {sorted(PRESETS)}")
    return name


# --------------------------------------------------------------------------- QIDO-RS


async def _search_studies(request: Request) -> Response:
    return await _search(request, "study")


async def _search_series(request: Request) -> Response:
    return await _search(request, "series")


async def _search_instances(request: Request) -> Response:
    return await _search(request, "instance")


async def _search(request: Request, level: str) -> Response:
    study = _uid(request, "study", "Study Instance UID")
    series = _uid(request, "series", "Series Instance UID")
    _require_dicom_json(request, "QIDO-RS")
    warnings: list[str] = []
    limit = _int_param(request, "limit", None, maximum=10**9)
    # PS3.18 §8.3.4.4: without limit (or above the server's maximum) the answer holds at most the
    # server's maximum, said in a Warning; without limit a 23,000-instance search was 41 MB of
    # JSON built in memory (an outside scale audit, 2026-12-02)
    most = int(request.app.state.settings.max_results)
    capped = limit is None or limit > most
    if capped:
        limit = most + 1  # one more than is sent: the Warning says there are more only when there are
    offset = _int_param(request, "offset", 0, maximum=10**9) or 0
    fuzzy_text = request.query_params.get("fuzzymatching", "false").strip().lower()
    if fuzzy_text not in ("true", "false", ""):  # PS3.18 §8.3.4.1: true or false (was taken as false)
        raise InvalidInputError(f"fuzzymatching={fuzzy_text[:50]!r}: expected true or false")
    fuzzy = fuzzy_text == "true"
    query, ignored = _query(request)
    include, unknown = _include_fields(request)
    if ignored:
        warnings.append(f"query keys not supported, ignored: {', '.join(sorted(set(ignored)))}")
    if unknown:
        warnings.append(f"includefield values not DICOM attributes, ignored: {', '.join(sorted(set(unknown)))}")
    store = request.app.state.store
    kw = {"limit": limit, "offset": offset, "fuzzy": fuzzy, "include": include}
    if level == "study":
        found = await run_in_threadpool(lambda: store.find_studies(query, **kw))
    elif level == "series":
        found = await run_in_threadpool(lambda: store.find_series(study, query, **kw))
    else:
        found = await run_in_threadpool(lambda: store.find_instances(study, series, query, **kw))
    base = base_url(request) + "/dicomweb"
    for item in found:
        _add_retrieve_url(item, base, level)
    if capped and len(found) > most:
        found = found[:most]
        warnings.append(f"at most {most} results per answer: there are more (use limit and offset)")
    response = await _dicom_json_answer(request, found)
    if warnings:
        response.headers["Warning"] = ", ".join(_warning_299(w) for w in warnings)
    return response


def _add_retrieve_url(item: dict[str, Any], base: str, level: str) -> None:
    """Retrieve URL (0008,1190) and Instance Availability (0008,0056) of a QIDO-RS result
    (PS3.18 Tables 10.6.3-3 to -5): where to WADO-RS it, and that it is online."""
    keys = {
        "study": ("0020000D",),
        "series": ("0020000D", "0020000E"),
        "instance": ("0020000D", "0020000E", "00080018"),
    }
    uids = [(item.get(tag) or {}).get("Value", [None])[0] for tag in keys[level]]
    if all(isinstance(uid, str) and uid for uid in uids):
        parts = zip(("studies", "series", "instances"), uids)
        item["00081190"] = {"vr": "UR", "Value": [base + "".join(f"/{name}/{uid}" for name, uid in parts)]}
    item.setdefault("00080056", {"vr": "CS", "Value": ["ONLINE"]})


def _include_fields(request: Request) -> tuple[frozenset[str], list[str]]:
    """QIDO-RS ``includefield`` (PS3.18 §8.3.4.3): repeated or comma-separated keywords or tags
    (8 hex digits), or ``all``; as tags, and the values that name no attribute (ignored)."""
    from pydicom.datadict import tag_for_keyword

    out = set()
    unknown: list[str] = []
    for value in request.query_params.getlist("includefield"):
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            if item.lower() == "all":
                out.add("all")
            elif len(item) == 8 and all(c in "0123456789abcdefABCDEF" for c in item):
                out.add(item.upper())
            elif (tag := tag_for_keyword(item)) is not None:
                out.add(f"{tag:08X}")
            else:
                unknown.append(item[:64])
    return frozenset(out), unknown


# --------------------------------------------------------------------------- WADO-RS


async def _records(request: Request) -> tuple[list[Any], str | None]:
    study = _uid(request, "study", "Study Instance UID")
    series = _uid(request, "series", "Series Instance UID")
    sop = _uid(request, "sop", "SOP Instance UID")
    records = await run_in_threadpool(request.app.state.store.instances, study, series, sop)
    return records, sop


async def _retrieve(request: Request) -> Response:
    records, sop = await _records(request)
    preset = _preset_param(request)
    accept = parse_accept(request.headers.get("accept"))
    stored = {r.transfer_syntax_uid for r in records}  # as stored counts for each instance (a series too)
    choices = _negotiate(accept, ("application/dicom",), preset, stored)
    store, pool = request.app.state.store, request.app.state.pool
    strict = sop is not None  # one instance: 406 when it can take none of the syntaxes
    if strict:  # produce before answering, so a failure is a clean 406 and not a cut stream
        data, got, single_part = await run_in_threadpool(_first_taken, store, records[0], choices, preset, pool, True)
        if single_part:  # Accept: application/dicom: the file itself (PS3.18 §10.4.4)
            return Response(data, media_type=f"application/dicom; transfer-syntax={got}")
        boundary = new_boundary()
        body = multipart_part_header(boundary, f"application/dicom; transfer-syntax={got}") + data + b"\r\n"
        body += multipart_end(boundary)
        return Response(body, media_type=f'multipart/related; type="application/dicom"; boundary={boundary}')
    boundary = new_boundary()
    if request.method == "HEAD":  # a GET's status and type without its body: nothing is produced
        head = Response(media_type=f'multipart/related; type="application/dicom"; boundary={boundary}')
        del head.headers["content-length"]  # not known before the instances are (a GET is chunked)
        return head

    def produce(record: Any) -> tuple[bytes, str]:
        data, got, _ = _first_taken(store, record, choices, preset, pool, False)
        return data, got

    async def parts() -> AsyncIterator[bytes]:
        from ..delivery.live import amap_ordered

        gen = amap_ordered(pool, produce, records)
        try:
            async for data, got in gen:
                yield multipart_part_header(boundary, f"application/dicom; transfer-syntax={got}")
                yield data
                yield b"\r\n"
        finally:
            await gen.aclose()
        yield multipart_end(boundary)

    # the first instance is produced before the status line: a failure there (a damaged store, a
    # syntax it cannot take) is a JSON error, not a 200 with no part (an outside audit, 2026-12-03)
    return ClosingStreamingResponse(
        await primed(parts()), media_type=f'multipart/related; type="application/dicom"; boundary={boundary}'
    )


async def _metadata(request: Request) -> Response:
    records, _ = await _records(request)
    _require_dicom_json(request, "Retrieve Metadata")
    store = request.app.state.store

    base = base_url(request) + "/dicomweb"

    def collect() -> list[dict[str, Any]]:
        return [store.metadata(r, _instance_url(base, r)) for r in records]

    return await _dicom_json_answer(request, await run_in_threadpool(collect))


def _instance_url(base: str, record: Any) -> str:
    return f"{base}/studies/{record.study_uid}/series/{record.series_uid}/instances/{record.sop_uid}"


async def _bulkdata(request: Request) -> Response:
    """One bulk data element, by the ``BulkDataURI`` the metadata gave (PS3.18 §10.4.1.1.5):
    ``multipart/related; type="application/octet-stream"`` when asked, single part otherwise (no
    Accept or ``*/*``: what a client in single-part mode sends, such as dicomweb-client's
    ``singlepart: "bulkdata"`` in OHIF); an Encapsulated Document also as its own MIME type;
    anything else 406."""
    from ..delivery.live import instance_bulk_data

    records, _ = await _records(request)
    record = records[0]
    path = request.path_params["path"]
    accept = parse_accept(request.headers.get("accept"))
    value, media = await run_in_threadpool(instance_bulk_data, request.app.state.store, record, path)
    offered = {media, "application/octet-stream"}
    for m in accept:
        multipart = m.type in ("multipart/*", "multipart/related")
        inner = (m.params.get("type") or "application/octet-stream").lower() if multipart else m.type
        if inner in ("*/*", "application/*"):
            inner = media
        if inner not in offered:
            continue
        if inner == "application/octet-stream" and m.params.get("transfer-syntax", "*") not in ("*", EXPLICIT_VR_LE):
            continue
        break
    else:
        raise NotAcceptableError(
            f"bulk data {path} is sent as {sorted(offered)}, single or multipart/related; asked: "
            f"{[m.type + str(m.params) for m in accept]}"
        )
    if not multipart:
        return Response(value, media_type=inner)
    boundary = new_boundary()
    location = _instance_url(base_url(request) + "/dicomweb", record) + "/bulkdata/" + path
    body = multipart_part_header(boundary, inner, {"Content-Location": location}) + value + b"\r\n"
    body += multipart_end(boundary)
    return Response(body, media_type=f'multipart/related; type="{inner}"; boundary={boundary}')


def _frame_numbers(text: str, n_frames: int) -> list[int]:
    """The frame list of a Retrieve Frames URL, in the order given: "a comma-separated list of one or
    more non-duplicate frame numbers" from 1 (PS3.18 §10.4.1, the Retrieve transaction's frame
    resources). A repeated number is refused: until
    2026-12-05 one GET could ask for the same 6 MB frame thousands of times, an answer of tens of
    GB built in memory (an outside audit); without repeats an answer is at most the instance's frames."""
    out: dict[int, None] = {}
    for part in text.split(","):
        number = parse_decimal(part)
        if number is None or not 1 <= number <= 100_000:
            raise InvalidInputError(f"frame list {text!r}: expected comma-separated frame numbers from 1")
        if number > n_frames:
            raise NotFoundError(f"frame {number} does not exist: the instance has {n_frames} frame(s)")
        if number in out:
            raise InvalidInputError(f"frame list {text[:200]!r}: frame {number} is asked for twice (PS3.18: "
                                    "a list of non-duplicate frame numbers)")  # fmt: skip
        out[number] = None
    return list(out)


async def _frames(request: Request) -> Response:
    from ..delivery.live import instance_frames

    records, _ = await _records(request)
    record = records[0]
    if not record.rows:
        raise NotFoundError(f"instance {record.sop_uid} has no pixel data, hence no frames")
    try:
        numbers = _frame_numbers(request.path_params["frames"], record.frames or 1)
    except NotFoundError:  # frame 2 of an image without Pixel Data: say that, not "it has 1 frame"
        from ..delivery.live import require_stored_pixel_data

        await run_in_threadpool(require_stored_pixel_data, request.app.state.store, record)
        raise
    preset = _preset_param(request)
    accept = parse_accept(request.headers.get("accept"))
    stored_media = FRAME_MEDIA_TYPES.get(record.transfer_syntax_uid)
    # every acceptable (syntax, media type as the client wrote it, single part), in the client's
    # order: the first this image can take is sent (a 1-bit image cannot be JPEG: the next choice,
    # not a 406). A single-part type (application/octet-stream, image/jpeg... without
    # multipart/related) gets the frame itself, as /bulkdata does: what a client in single-part
    # mode reads (until 2026-12-05 it got a multipart body it took for pixel data: an outside
    # audit); several frames cannot be one part, so such a type is then passed over, and alone 406.
    choices: list[tuple[str, str | None, bool]] = []
    for m in accept:
        inner = m.params.get("type", "").lower() if m.type == "multipart/related" else m.type
        media = MEDIA_ALIASES.get(inner, inner)
        single = not m.type.startswith("multipart/") and m.type != "*/*"
        if single and len(numbers) > 1:
            continue
        if m.type in ("*/*", "multipart/*") or (m.type == "multipart/related" and inner in ("", "*/*")):
            choices.append((EXPLICIT_VR_LE, None, False))
        elif inner == "application/octet-stream":  # uncompressed samples, whatever is stored (PS3.18 §8.7.3.3.2)
            if m.params.get("transfer-syntax", EXPLICIT_VR_LE) in (EXPLICIT_VR_LE, "*"):
                choices.append((EXPLICIT_VR_LE, None, single))
        elif media in DEFAULT_FRAME_SYNTAX:
            ts = m.params.get("transfer-syntax")
            if ts == "*":  # any syntax of this type: as stored when it is one, else the type's default
                ts = record.transfer_syntax_uid if stored_media == media else None
            if ts is None:  # the image type's default, or with ?preset= the preset's syntax of that type
                ts = _default_frame_syntax(media, record, preset)
            if ts is None or FRAME_MEDIA_TYPES.get(ts) != media:
                continue
            if ts != record.transfer_syntax_uid and not _producible(ts, preset):
                continue
            choices.append((ts, inner, single))
    if not choices:
        several = (
            f"; {len(numbers)} frames come as multipart/related only"
            if len(numbers) > 1 and any(not m.type.startswith("multipart/") and m.type != "*/*" for m in accept)
            else ""
        )
        raise NotAcceptableError(
            f"cannot send frames as any of {[m.type + str(m.params) for m in accept]}{several}: available are "
            f"application/octet-stream ({EXPLICIT_VR_LE}), the stored syntax ({stored_media or 'uncompressed'}) "
            f", the presets' {sorted(set(_preset_syntaxes_values()))} and, losslessly, {_lossless_values()}"
        )
    store = request.app.state.store
    unique = list(dict.fromkeys(choices))
    for ts, asked_media, single in unique:
        try:
            frames, got = await run_in_threadpool(instance_frames, store, record, numbers, ts, preset)
        except NotAcceptableError:
            if (ts, asked_media, single) == unique[-1]:
                raise
            continue
        break
    media = FRAME_MEDIA_TYPES.get(got, "application/octet-stream")
    if asked_media is not None and MEDIA_ALIASES.get(asked_media) == media:
        media = asked_media
    params = "" if media == "application/octet-stream" and got == EXPLICIT_VR_LE else f"; transfer-syntax={got}"
    if single:  # one frame (checked above), the frame itself
        return Response(frames[0], media_type=f"{media}{params}")
    boundary = new_boundary()
    pieces = []
    for frame in frames:
        pieces += [multipart_part_header(boundary, f"{media}{params}"), frame, b"\r\n"]
    pieces.append(multipart_end(boundary))
    return Response(b"".join(pieces), media_type=f'multipart/related; type="{media}"; boundary={boundary}')


def _window(request: Request) -> tuple[float, float, str] | None:
    value = request.query_params.get("window")
    if value is None:
        return None
    parts = value.split(",")
    try:
        center, width = float(parts[0]), float(parts[1])
    except (ValueError, IndexError):
        raise InvalidInputError(f"window={value!r}: expected center,width[,linear|sigmoid]") from None
    function = parts[2].strip().lower().replace("_", "-") if len(parts) > 2 else "linear"
    if width <= 0 or not np.isfinite(center) or not np.isfinite(width) or function not in WINDOW_FUNCTIONS:
        raise InvalidInputError(f"window={value!r}: expected center,width>0[,linear|linear-exact|sigmoid]")
    return center, width, function


async def _rendered(request: Request) -> Response:
    records, _ = await _records(request)
    record = records[0]
    frame_text = request.path_params.get("frames", "1")
    if not record.rows:
        raise NotFoundError(f"instance {record.sop_uid} has no pixel data to render")
    numbers = _frame_numbers(frame_text, record.frames or 1)
    if len(numbers) != 1:
        raise InvalidInputError("rendered: exactly one frame at a time")
    return await _rendered_answer(request, record, numbers[0], default_media="image/jpeg", default_viewport=None)


async def _thumbnail(request: Request) -> Response:
    """PS3.18 §10.4.1.1.6 thumbnail of a study, series, instance or frame: the middle image of the
    first series with pixels (the middle frame of a multi-frame instance), fitted to ``viewport``
    (default 128x128), JPEG unless PNG is asked for."""
    records, _ = await _records(request)
    images = [r for r in records if r.rows]
    if not images:
        raise NotFoundError("nothing with pixel data to show as a thumbnail")
    first = images[0].series_uid
    series = [r for r in images if r.series_uid == first]
    record = series[len(series) // 2]
    frames = record.frames or 1
    if "frames" in request.path_params:
        number = _frame_numbers(request.path_params["frames"], frames)[0]
    else:
        number = (frames + 1) // 2  # the middle frame (1 for a single frame)
    return await _rendered_answer(request, record, number, default_media="image/jpeg", default_viewport=(128, 128))


async def _rendered_answer(
    request: Request, record: Any, number: int, *, default_media: str, default_viewport: tuple[int, int] | None
) -> Response:
    """One frame rendered (window from ``?window=`` or the file, ``?quality=``, ``?viewport=w,h``)."""
    window = _window(request)
    quality = _int_param(request, "quality", 90, maximum=100)
    if quality is None or quality < 1:  # PS3.18 §8.3.5.1.5: 1-100 (0 was taken as the default)
        raise InvalidInputError(f"quality={request.query_params.get('quality')!r}: expected 1-100")
    viewport, region = _viewport(request, record)
    viewport = viewport or default_viewport
    media = None
    for m in parse_accept(request.headers.get("accept")):
        if m.type in ("image/png", "image/jpeg"):
            media = m.type
        elif m.type in ("*/*", "image/*"):
            media = default_media
        if media:
            break
    if media is None:
        raise NotAcceptableError("rendered images are image/png or image/jpeg")
    preset = _preset_param(request)
    store, pool = request.app.state.store, request.app.state.pool
    data, ts = await run_in_threadpool(
        render_frame, store, record, number, window, media, quality, viewport, preset, pool, region
    )
    return Response(data, media_type=media, headers={"X-Preset": preset or "original", "X-Transfer-Syntax": ts})


def _viewport(request: Request, record: Any) -> tuple[tuple[int, int] | None, tuple[float, float, float, float] | None]:
    """``?viewport=vw,vh[,sx,sy,sw,sh]`` (PS3.18 §8.3.5.1.3): the size the image is fitted into, and
    the source region (left, top, width, height in the image's pixels, inside it; as fractions for
    :func:`render_frame`), or ``None``. The region's flipping form (negative sw, sh) is refused with
    400; until 2026-12-05 every region was (an outside audit)."""
    text = request.query_params.get("viewport")
    if text is None or text == "":
        return None, None
    parts = text.split(",")
    numbers = [parse_decimal(p) for p in parts]
    sizes = [n for n in numbers[:2] if n is not None and 1 <= n <= 4096]
    if len(parts) not in (2, 6) or len(sizes) != 2:
        raise InvalidInputError(
            f"viewport={text[:100]!r}: expected width,height in pixels (1-4096 each), then optionally the source "
            "region x,y,width,height"
        )
    if len(parts) == 2:
        return (sizes[0], sizes[1]), None
    cols, rows = int(record.columns or 0), int(record.rows or 0)
    sx, sy, sw, sh = numbers[2:]
    if (sx is None or sy is None or sw is None or sh is None or sw < 1 or sh < 1 or sx + sw > cols
            or sy + sh > rows):  # fmt: skip
        raise InvalidInputError(
            f"viewport={text[:100]!r}: the source region x,y,width,height must lie inside the {cols} x {rows} "
            "image, width and height >= 1 (flipping by negative ones is not supported)"
        )
    return (sizes[0], sizes[1]), (sx / cols, sy / rows, (sx + sw) / cols, (sy + sh) / rows)


def render_frame(
    store: Any,
    record: Any,
    number: int,
    window: tuple[float, float, str] | None,
    media: str,
    quality: int,
    viewport: tuple[int, int] | None = None,
    preset: str | None = None,
    pool: Any = None,
    region: tuple[float, float, float, float] | None = None,
) -> tuple[bytes, str]:
    """Frame ``number`` of ``record`` (of its ``preset`` rendition when given) as PNG or JPEG bytes,
    and the transfer syntax of the file it was decoded from.

    ``window`` (center, width, function) or the file's; ``region`` (x1, y1, x2, y2 as fractions of
    the width and height, WADO-URI's) crops before ``viewport`` (width, height) fits the result."""
    import pydicom
    from PIL import Image
    from pydicom.pixels import apply_modality_lut, pixel_array

    from ..delivery.live import original_units
    from ..dicom.pixel_spec import frame_value_transform, frame_voi_function, voi_lut_table

    if preset in (None, "original"):
        from ..delivery.live import instance_bytes

        stored, _ = instance_bytes(store, record, "*")  # PS3.10, so pydicom knows a preamble-less file's syntax
        ds = pydicom.dcmread(io.BytesIO(stored), force=True)
    else:
        from ..delivery.live import rendition_or_encode

        data, _, _ = rendition_or_encode(store, record, preset, pool=pool)
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    ts = str(ds.file_meta.get("TransferSyntaxUID", record.transfer_syntax_uid))
    from ..delivery.live import refuse_too_large, require_pixel_data

    require_pixel_data(ds, record.sop_uid)
    refuse_too_large(ds)  # a 190 kB file may declare 4 GB
    frames = int(ds.get("NumberOfFrames") or 1)
    samples = int(ds.get("SamplesPerPixel") or 1)
    try:  # the one frame asked for: ds.pixel_array decoded all 120 frames of a colour ultrasound clip
        # for each (5.9 s a frame here, 18 ms now; an outside audit of the viewer, 2026-12-05)
        arr = pixel_array(ds, index=number - 1) if frames > 1 else ds.pixel_array
    except Exception as exc:
        raise NotAcceptableError(f"instance {record.sop_uid}: its pixels cannot be decoded: {exc}") from exc
    if samples == 3 or ds.get("PhotometricInterpretation", "") in ("PALETTE COLOR",):
        # YBR_* is RGB already: pydicom's pixel_array converts it (as_rgb); converting again was
        # a bug (hue-shifted ultrasound) until 2026-12-01
        if ds.get("PhotometricInterpretation", "") == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut

            arr = apply_color_lut(arr, ds)
        img8 = np.clip(arr / (arr.max() / 255.0 if arr.max() > 255 else 1), 0, 255).astype(np.uint8)
        image = Image.fromarray(img8, "RGB")
    else:
        slope, intercept, center, width = frame_value_transform(ds, number)
        units = original_units(store, record, preset, ds) if window is not None else None
        if units is not None:  # ?window= is in the original's units (its /metadata); a DX copy's are not
            values = arr.astype(np.float64) * units[0] + units[1]
        elif "ModalityLUTSequence" in ds:
            values = apply_modality_lut(arr, ds).astype(np.float64)
        else:  # the frame's own rescale (an enhanced object's functional groups), else the top level's
            values = arr.astype(np.float64) * (1.0 if slope is None else slope) + (intercept or 0.0)
        out = None
        if window is None:  # the file's VOI (PS3.4 N.2.1.1): its VOI LUT, else its window and function
            table = next(filter(None, (voi_lut_table(item, ds) for item in ds.get("VOILUTSequence") or [])), None)
            if table is not None:  # PS3.3 C.11.2.1.1, values beyond the LUT take its ends (an audit, 2026-12-04)
                first, lut, bits = table
                index = np.clip(np.rint(values).astype(np.int64) - first, 0, lut.size - 1)
                out = lut[index] * (255.0 / ((1 << bits) - 1))
            elif center is not None and width is not None and width > 0:
                window = (center, width, frame_voi_function(ds, number).lower().replace("_", "-"))
        if out is None:
            if window is None:
                lo, hi = float(values.min()), float(values.max())
                window = ((lo + hi) / 2, max(hi - lo, 1.0), "linear")
            out = window_to_8bit(values, *window)
        img8 = np.clip(np.rint(out), 0, 255).astype(np.uint8)  # rounded, as DCMTK and the viewer do
        if ds.get("PhotometricInterpretation", "") == "MONOCHROME1":
            img8 = 255 - img8
        image = Image.fromarray(img8, "L")
    if region is not None:
        x1, y1, x2, y2 = region
        # (+1e-9: a region given in pixels, /rendered's viewport, comes as a fraction that may land a hair under)
        box = (int(x1 * image.width + 1e-9), int(y1 * image.height + 1e-9), round(x2 * image.width),
               round(y2 * image.height))  # fmt: skip
        image = image.crop((box[0], box[1], max(box[2], box[0] + 1), max(box[3], box[1] + 1)))
    if viewport is not None:  # fitted inside the viewport, aspect ratio kept (never enlarged past 4096)
        scale = min(viewport[0] / image.width, viewport[1] / image.height)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        if size != image.size:
            image = image.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if media == "image/jpeg":
        image.save(buf, format="JPEG", quality=quality)
    else:
        image.save(buf, format="PNG")
    return buf.getvalue(), ts


# --------------------------------------------------------------------------- STOW-RS


async def _read_body(request: Request, limit: int, timeout: float) -> bytearray:
    """The body, at most ``limit`` bytes, in one buffer grown in place (the chunks joined at the end
    were a second copy: a 74.5 MB STOW took 146 MB, an outside audit, 2026-12-05). A declared
    Content-Length over the limit is refused by the caller before it waits for the budget.

    The body must keep coming (:mod:`.connections`): by ``timeout`` seconds plus one second for
    every :data:`~.connections.BODY_MIN_RATE` bytes received since the first read, or
    :class:`~.errors.RequestTimeoutError` (408)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    body = bytearray()
    chunks = request.stream().__aiter__()
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(
                    chunks.__anext__(), max(0.0, deadline + len(body) / BODY_MIN_RATE - loop.time())
                )
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise RequestTimeoutError(
                    f"the body stopped arriving ({len(body)} bytes received; at least {BODY_MIN_RATE} bytes a "
                    f"second are needed after {timeout:g} s, --body-timeout)"
                ) from None
            if len(body) + len(chunk) > limit:
                raise PayloadTooLargeError(f"the body is over the limit of {limit} bytes (--max-upload)")
            body += chunk
    except ClientDisconnect:
        raise InvalidInputError("the client closed the connection before the body was complete") from None
    return body


class ByteBudget:
    """Bytes that requests hold at once, shared: STOW-RS bodies are read whole, so four concurrent
    224 MB uploads took a server to 2 GB (an outside audit, 2026-12-05). A request holds what its
    Content-Length declares (the upload limit when it declares none) before its body is read, and
    waits while the others hold the rest; one larger than the whole budget holds all of it."""

    def __init__(self, total: int) -> None:
        self.total = max(1, int(total))
        self.free = self.total
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, n: int) -> AsyncIterator[None]:
        n = max(0, min(int(n), self.total))
        async with self._changed:
            await self._changed.wait_for(lambda: self.free >= n)
            self.free -= n
        try:
            yield
        finally:
            async with self._changed:
                self.free += n
                self._changed.notify_all()


#: STOW-RS bodies held at once, in upload limits (``--max-upload``): two of the largest, or many small.
STOW_BUDGET_UPLOADS = 2


def _stow_budget(request: Request) -> ByteBudget:
    state = request.app.state
    budget = getattr(state, "stow_budget", None)
    if budget is None:
        budget = state.stow_budget = ByteBudget(STOW_BUDGET_UPLOADS * state.settings.max_upload_bytes)
    return budget


def _looks_dicom(data: memoryview) -> bool:
    return bytes(data[128:132]) == b"DICM" or (len(data) > 8 and bytes(data[0:2]) in (b"\x08\x00", b"\x02\x00"))


def _refused_body(request: Request, exc: Exception) -> None:
    """One log line for a STOW-RS body refused for its size or its pace: the sender learns it from
    the status, the operator did not (Orthanc sends a whole study as one request: one over
    --max-upload failed whole with nothing in the log; an outside audit, 2026-12-05)."""
    client = request.client.host if request.client else "?"
    hint = "; raise --max-upload, or send smaller requests or over C-STORE" if isinstance(
        exc, PayloadTooLargeError) else ""  # fmt: skip
    logging.getLogger(__name__).warning("STOW-RS from %s refused: %s%s", client, exc, hint)


async def _stow(request: Request) -> Response:
    study = _uid(request, "study", "Study Instance UID")
    content_type = request.headers.get("content-type", "")
    try:
        media = parse_media_type(content_type)
    except InvalidInputError as exc:
        raise UnsupportedMediaTypeError(f"Content-Type {content_type!r} is malformed") from exc
    inner = media.params.get("type", "application/dicom").lower()
    if media.type != "multipart/related" or inner != "application/dicom":
        raise UnsupportedMediaTypeError(
            f'STOW-RS takes multipart/related; type="application/dicom", not {content_type!r}'
        )
    _require_dicom_json(request, "STOW-RS")  # before anything is stored: a 406 stores nothing
    settings = request.app.state.settings
    declared = parse_decimal(request.headers.get("content-length") or "")
    if declared is not None and declared > settings.max_upload_bytes:  # refused before it waits for the budget
        too_large = PayloadTooLargeError(
            f"the body is {declared} bytes, the limit is {settings.max_upload_bytes} (--max-upload)"
        )
        _refused_body(request, too_large)
        raise too_large
    async with _stow_budget(request).hold(declared if declared is not None else settings.max_upload_bytes):
        try:
            body = await _read_body(request, settings.max_upload_bytes, settings.body_timeout)
        except (PayloadTooLargeError, RequestTimeoutError) as exc:
            _refused_body(request, exc)
            raise
        parts = list(iter_multipart(body, content_type))
        dicom_parts = []
        for headers, content in parts:
            part_type = headers.get("content-type", "application/dicom").split(";")[0].strip().lower()
            if part_type == "application/dicom" and _looks_dicom(content):
                dicom_parts.append(content)
        if not dicom_parts:
            raise NotDicomError(f"none of the {len(parts)} part(s) is a DICOM file (PS3.10): nothing stored")
        store = request.app.state.store
        base = base_url(request) + "/dicomweb"

        stored_studies: dict[str, None] = {}

        def ingest_all() -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, bool, int]:
            from ..delivery.catalog import SOURCE_STOW
            from ..delivery.header import read_header

            referenced, failed, bad = [], [], len(parts) - len(dicom_parts)
            full: BaseException | None = None  # the store is full: the parts after it are not tried
            ours = 0  # parts refused for the server's want of space or resources, not for what they hold
            for content in dicom_parts:
                data = bytes(content)
                if full is not None:
                    ours += 1
                    failed.append({**_failed(_header_or_nothing(data), RESOURCE_FAILURE),
                                   "00000902": {"vr": "LO", "Value": [refusal_comment(full)]}})  # fmt: skip
                    continue
                try:
                    if study is not None:
                        ds = read_header(data, "stow")
                        if str(ds.get("StudyInstanceUID", "")) != study:
                            failed.append(_failed(ds, 0xA900))  # PS3.18 §10.5.3: study mismatch
                            continue
                    outcome = store.ingest_bytes(data, source=SOURCE_STOW)
                except Exception as exc:  # this part fails (0xC000, why in the comment); the others go on
                    if not isinstance(exc, CodecError):
                        logging.getLogger(__name__).exception("STOW-RS: a part could not be ingested")
                    else:  # one line, as C-STORE logs a refusal (they were not logged at all)
                        logging.getLogger(__name__).warning("STOW-RS part refused: %s", exc)
                    if isinstance(exc, StoreFullError):
                        full = exc
                    ours += isinstance(exc, (StoreFullError, OutOfResourcesError))
                    code = failure_status(exc) if isinstance(exc, CodecError) else PROCESSING_FAILURE
                    failed.append(
                        {
                            **_failed(_header_or_nothing(data), code),
                            "00000902": {"vr": "LO", "Value": [refusal_comment(exc)]},
                        }
                    )
                    continue
                if outcome.status == "conflict":  # another object under this SOP Instance UID: nothing stored
                    # (0x0111, as PS3.7 C.5.8's duplicate SOP instance)
                    named = {
                        "SOPClassUID": outcome.record.sop_class_uid if outcome.record else "",
                        "SOPInstanceUID": outcome.sop_uid,
                    }
                    logging.getLogger(__name__).warning("STOW-RS conflict: %s", outcome.message)  # as C-STORE logs it
                    comment = {"vr": "LO", "Value": [CONFLICT_COMMENT]}  # the outcome's message, in the log
                    failed.append({**_failed(named, 0x0111), "00000902": comment})
                    continue
                if outcome.status == "stored":
                    stored_studies[outcome.study_uid] = None
                rec = outcome.record
                # a copy of ours sent back is retrieved through its original (its own URL was a 404)
                where = rec if rec is not None and rec.sop_uid != outcome.sop_uid else outcome
                url = f"{base}/studies/{where.study_uid}/series/{where.series_uid}/instances/{where.sop_uid}"
                item = {
                    "00081150": {"vr": "UI", "Value": [rec.sop_class_uid if rec else ""]},
                    "00081155": {"vr": "UI", "Value": [outcome.sop_uid]},
                    "00081190": {"vr": "UR", "Value": [url]},
                }
                if outcome.status == "duplicate":
                    item["00081196"] = {"vr": "US", "Value": [0xB000]}  # warning: already stored, unchanged
                referenced.append(item)
            return referenced, failed, bad, full is not None, ours

        referenced, failed, bad, full, ours = await run_in_threadpool(ingest_all)
    refresher = getattr(request.app.state, "refresher", None)
    if refresher is not None:  # the studies that got new instances: pre-computed again, in the background
        for study_uid in stored_studies:
            refresher.notify(study_uid)
    result: dict[str, Any] = {}
    if study is not None:
        result["00081190"] = {"vr": "UR", "Value": [f"{base}/studies/{study}"]}
    if referenced:
        result["00081199"] = {"vr": "SQ", "Value": referenced}
    if failed or bad:
        result["00081198"] = {"vr": "SQ", "Value": failed + [{"00081197": {"vr": "US", "Value": [0xC000]}}] * bad}
    status = 200 if not failed and not bad else 202 if referenced else 409
    headers = {}
    if status == 409 and not bad and ours == len(failed):
        # nothing stored for want of space or resources: the server's trouble, to retry later, not a
        # conflict in the request (409 tells a sender not to send it again: an outside audit, 2026-12-05)
        status = 507 if full else 503
        headers = {"Retry-After": RETRY_AFTER}
    response = _dicom_json(result, status)
    response.headers.update(headers)
    return response


def _header_or_nothing(data: bytes) -> Any:
    """A failed part's header for its failed item (SOP Class / Instance UID), or ``{}``."""
    from ..delivery.header import read_header
    from ..dicom.limits import deflated_dataset_offset

    try:
        return read_header(data, "stow")
    except CodecError:  # a data set without its SOP UIDs, say: its file meta may still name them
        try:
            import pydicom

            # a deflated data set is not inflated again to name it (a deflate bomb the limits refused
            # took STOW-RS to 3.1 GB here until 2026-12-05, an outside audit): its file meta alone
            end = deflated_dataset_offset(data[:65536])
            return pydicom.dcmread(io.BytesIO(data if end is None else data[:end]), stop_before_pixels=True, force=True)
        except Exception:
            return {}


def _failed(ds: Any, reason: int) -> dict[str, Any]:
    """A Failed SOP Sequence item: the part's SOP Class / Instance UID, from its data set, else from
    its file meta (a data set without them, which is why it failed: an outside audit, 2026-12-02)."""
    meta = getattr(ds, "file_meta", None)
    meta = meta if meta is not None else {}
    sop_class = ds.get("SOPClassUID", "") or meta.get("MediaStorageSOPClassUID", "")
    sop_instance = ds.get("SOPInstanceUID", "") or meta.get("MediaStorageSOPInstanceUID", "")
    return {
        "00081150": {"vr": "UI", "Value": [str(sop_class)]},
        "00081155": {"vr": "UI", "Value": [str(sop_instance)]},
        "00081197": {"vr": "US", "Value": [reason]},
    }


# --------------------------------------------------------------------------- routes


def routes() -> list[Route]:
    """The DICOMweb routes, mounted under ``/dicomweb``."""
    p = "/dicomweb"
    inst = p + "/studies/{study}/series/{series}/instances/{sop}"
    return [
        Route(p + "/studies", _search_studies, methods=["GET"]),
        Route(p + "/studies", _stow, methods=["POST"]),
        Route(p + "/series", _search_series, methods=["GET"]),
        Route(p + "/instances", _search_instances, methods=["GET"]),
        Route(p + "/studies/{study}/series", _search_series, methods=["GET"]),
        Route(p + "/studies/{study}/instances", _search_instances, methods=["GET"]),
        Route(p + "/studies/{study}/series/{series}/instances", _search_instances, methods=["GET"]),
        Route(p + "/studies/{study}", _retrieve, methods=["GET"]),
        Route(p + "/studies/{study}", _stow, methods=["POST"]),
        Route(p + "/studies/{study}/metadata", _metadata, methods=["GET"]),
        Route(p + "/studies/{study}/series/{series}", _retrieve, methods=["GET"]),
        Route(p + "/studies/{study}/series/{series}/metadata", _metadata, methods=["GET"]),
        Route(inst, _retrieve, methods=["GET"]),
        Route(inst + "/metadata", _metadata, methods=["GET"]),
        Route(inst + "/bulkdata/{path:path}", _bulkdata, methods=["GET"]),
        Route(inst + "/rendered", _rendered, methods=["GET"]),
        Route(inst + "/frames/{frames}", _frames, methods=["GET"]),
        Route(inst + "/frames/{frames}/rendered", _rendered, methods=["GET"]),
        Route(p + "/studies/{study}/thumbnail", _thumbnail, methods=["GET"]),
        Route(p + "/studies/{study}/series/{series}/thumbnail", _thumbnail, methods=["GET"]),
        Route(inst + "/thumbnail", _thumbnail, methods=["GET"]),
        Route(inst + "/frames/{frames}/thumbnail", _thumbnail, methods=["GET"]),
    ]
