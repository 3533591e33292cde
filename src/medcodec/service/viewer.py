"""The viewer page (``GET /viewer/``) and the two small JSON/frame endpoints it needs.

The page itself is static HTML/JS/CSS shipped inside the package
(``medcodec/service/static/viewer``): no CDN, no internet at run time. It lists studies and
series through the server's own QIDO-RS (``/dicomweb``), and gets everything DICOMweb has no
word for from two routes here, both read-only over the store API (docs/delivery.md)::

    GET /viewer/                                  index.html (``?study=UID[&series=UID]``)
    GET /viewer/<file>                            the page's scripts and styles
    GET /viewer/api/studies/{study}/series/{series}/stack
        JSON: the series' instances in slice order, and per instance and preset the stored
        rendition's transfer syntax, size, ratio, PSNR and max error in HU (the manifest
        numbers), plus the header's modality and default window.
    GET /viewer/api/studies/{study}/series/{series}/instances/{sop}/frames/{n}?preset=NAME
        One frame of one preset, as it travels:

        * the rendition is 8/12-bit unsigned grayscale JPEG (1.2.840.10008.1.2.4.50/.51): the
          frame's JPEG codestream itself (``image/jpeg``), decoded in the browser (``jpeg.js``);
        * anything else (the original, JPEG-LS, JPEG 2000, HTJ2K, RLE ...): the stored sample
          values decoded here, little-endian, zlib-deflated (``application/x-medcodec-deflate``),
          inflated in the browser;
        * ``preset=mdc`` (:data:`MDC`, not a stored preset): the frame coded as ``.mdc`` now at
          the size of its diagnostic rendition, decoded here and sent like the previous case.

        A preset not yet computed for the instance is encoded on request with the same
        ``Preset.encode_instance`` the pre-computation uses. Colour images get 406: the page
        draws WADO-RS ``/rendered`` for them.

        Response headers say what the bytes are (``X-Encoding``: ``jpeg`` | ``deflate``) and
        how to read them: ``X-Rows``, ``X-Columns``, ``X-Bits-Stored``, ``X-Signed``,
        ``X-Rescale-Slope``, ``X-Rescale-Intercept`` (of THAT rendition: a 12-bit JPEG of signed
        CT has its own rescale, see :mod:`medcodec.dicom.lossy`), ``X-Photometric``,
        ``X-Transfer-Syntax`` (of the stored rendition) and ``X-Stored-Bytes`` (the frame's
        size in the stored file).

DICOMweb ``/frames/{n}`` negotiates a transfer syntax but cannot tell ``diagnostic`` from
``preview`` (both may be 12-bit JPEG), hence the preset parameter here. Errors are raised
as :class:`~medcodec.errors.CodecError` subclasses and mapped to HTTP by the app's one handler.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import CodecError, DicomError, InvalidInputError, NotAcceptableError, NotFoundError
from .http import parse_decimal

__all__ = ["routes", "viewer_mount", "series_stack", "frame_payload", "JPEG_SYNTAXES", "DEFLATE_LEVEL", "MDC"]

#: Transfer syntaxes whose frames the page decodes itself (ISO 10918-1 baseline / extended).
JPEG_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"})
#: zlib level for decoded samples: 1 is several times faster than 6 and within ~10 % in size on CT.
DEFLATE_LEVEL = 1
#: Not a stored preset: medcodec's own ``.mdc`` container coded on request at the size of the
#: instance's diagnostic rendition (or, without one, at the diagnostic quality), decoded here,
#: so the page compares it with the standard JPEG at equal bytes.
MDC = "mdc"
#: Most frames one request may name (``frames/{n}``): guards against absurd numbers.
MAX_FRAME = 1 << 20

StoreGetter = Callable[[Request], Any]


def _static_dir() -> str:
    return str(resources.files("medcodec.service") / "static" / "viewer")


def _store_from_app(request: Request) -> Any:
    store = getattr(request.app.state, "store", None)
    if store is None:  # pragma: no cover - a wiring error of the app, not of the request
        raise CodecError("the viewer is mounted on an app without a store (app.state.store)")
    return store


def routes() -> list[BaseRoute]:
    """The viewer's routes for :func:`medcodec.service.app.create_app` (store: ``app.state.store``)."""
    return [viewer_mount()]


def viewer_mount(store: Any = None) -> Mount:
    """Routes of the viewer, to include in the app's routes: ``Mount("/viewer", ...)``.

    Parameters
    ----------
    store
        The :class:`medcodec.delivery.Store` to read, or a callable ``request -> Store``;
        ``None`` uses ``request.app.state.store``.

    Returns
    -------
    starlette.routing.Mount
    """
    if store is None:
        get: StoreGetter = _store_from_app
    elif callable(store) and not hasattr(store, "instances"):
        get = store
    else:
        get = lambda _request: store  # noqa: E731

    def stack(request: Request) -> Response:
        study, series = _uids(request, "study", "series")
        return Response(
            json.dumps(series_stack(get(request), study, series), allow_nan=False),
            media_type="application/json",
            headers={"Cache-Control": "no-cache"},
        )

    def frame(request: Request) -> Response:
        study, series, sop = _uids(request, "study", "series", "sop")
        n = _frame_number(request.path_params["n"])
        preset = request.query_params.get("preset", "original")
        body, headers, media = frame_payload(get(request), study, series, sop, n, preset)
        headers["Cache-Control"] = "private, max-age=3600"
        return Response(body, media_type=media, headers=headers)

    api = [
        Route("/studies/{study}/series/{series}/stack", stack, methods=["GET"]),
        Route("/studies/{study}/series/{series}/instances/{sop}/frames/{n}", frame, methods=["GET"]),
    ]
    return Mount(
        "/viewer",
        routes=[
            Mount("/api", routes=api),
            Mount("/", app=StaticFiles(directory=_static_dir(), html=True), name="viewer"),
        ],
    )


# ----------------------------------------------------------------------------- helpers


def _uids(request: Request, *names: str) -> list[str]:
    from ..delivery.uids import validate_uid

    return [validate_uid(request.path_params[n], what=n) for n in names]


def _frame_number(text: str) -> int:
    number = parse_decimal(text)
    if number is None or not 1 <= number <= MAX_FRAME:
        raise InvalidInputError(f"frame number {text[:20]!r} is invalid, expected 1..{MAX_FRAME} (PS3.18 §10.4.1.1.5)")
    return number


def _record(store: Any, study: str, series: str, sop: str) -> Any:
    found = store.instances(study, series, sop)  # raises NotFoundError when nothing matches
    if not found:  # pragma: no cover - the store raises first
        raise NotFoundError(f"no instance {sop} in series {series} of study {study}")
    return found[0]


def _number(value: Any) -> float | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _json_value(header: dict[str, Any], tag: str) -> Any:
    element = header.get(tag) or {}
    values = element.get("Value") or []
    return values[0] if values else None


#: Preset names when :mod:`medcodec.delivery.presets` cannot be imported (it always can once built).
_DEFAULT_PRESETS = ("original", "lossless", "diagnostic", "preview")


def _presets() -> dict[str, Any]:
    try:
        from ..delivery.presets import PRESETS
    except ImportError:  # pragma: no cover - presets are part of the delivery package
        return dict.fromkeys(_DEFAULT_PRESETS)
    return dict(PRESETS)


def _codes_now(record: Any, preset: Any) -> bool:
    """Would ``preset`` code ``record`` (not pass it through) when asked for it now? Grayscale
    with a value mapping (``compressible``), and 8-bit colour under a preset with a colour point."""
    if record.compressible:
        return True
    from ..delivery.presets import COLOUR, is_colour_record

    return COLOUR in getattr(preset, "points", {}) and is_colour_record(record)


def _rendition_info(rendition: Any) -> dict[str, Any]:
    return {
        "transfer_syntax": str(rendition.transfer_syntax_uid or ""),
        "size": int(rendition.size or 0),
        "ratio": _number(rendition.ratio),
        "psnr": _number(rendition.psnr),
        "max_error_hu": _number(rendition.max_error_hu),
        "passthrough": bool(rendition.passthrough),
        "live": False,
    }


def series_stack(store: Any, study: str, series: str) -> dict[str, Any]:
    """What the page needs to show one series: slice order, header window, per-preset numbers.

    Parameters
    ----------
    store
        A :class:`medcodec.delivery.Store`.
    study, series
        Validated UIDs.

    Returns
    -------
    dict
        ``{"study", "series", "modality", "description", "rows", "columns", "windows": [[center,
        width, explanation], ...] (every pair the first instance's header gives, PS3.3
        §C.11.2.1.2; the first is the default), "voi_function" (its VOI LUT Function: LINEAR,
        LINEAR_EXACT or SIGMOID), "voi_luts" (its VOI LUTs, :func:`_voi_luts`), "presets": [names],
        "measured": {name: {"low", "high", "padding"}}, "instances": [{"sop", "number", "frames", "size",
        "presets": {name: {"transfer_syntax", "size", "ratio", "psnr", "max_error_hu", "passthrough", "live"}}}]}``.
        A preset not yet computed for an instance is listed with ``"live": true`` and no numbers
        (its frames are then encoded on request). ``measured`` gives, per lossy preset with a
        series mapping, the original *stored* values its max error and PSNR are measured on
        (:meth:`~medcodec.dicom.mapping.SeriesMapping.kept`: ``low``..``high``, outside the
        ``padding`` range): the page's difference statistics leave the rest out as the manifest
        does (a CT's padding outside the scan circle is clipped by the mapping, not coded).

    Raises
    ------
    NotFoundError
        No instance in that series.
    """
    records = store.instances(study, series)
    known = _presets()
    names = [*known, MDC]
    header = store.metadata(records[0])
    instances = []
    for rec in records:
        presets: dict[str, Any] = {}
        for name in names:
            if name in ("original", MDC):
                continue
            rendition = store.rendition(rec, name)
            if rendition is not None:
                presets[name] = _rendition_info(rendition)
            elif _codes_now(rec, known[name]):
                presets[name] = {
                    "transfer_syntax": "",
                    "size": None,
                    "ratio": None,
                    "psnr": None,
                    "max_error_hu": None,
                    "passthrough": False,
                    "live": True,
                }
        if rec.compressible and (rec.samples_per_pixel or 1) == 1 and "diagnostic" in presets:
            presets[MDC] = {
                "transfer_syntax": "",
                "size": None,
                "ratio": presets["diagnostic"]["ratio"],
                "psnr": None,
                "max_error_hu": None,
                "passthrough": False,
                "live": True,
            }
        instances.append(
            {
                "sop": rec.sop_uid,
                "number": rec.instance_number,
                "frames": int(rec.frames or 1),
                "size": int(rec.size or 0),
                "samples_per_pixel": int(rec.samples_per_pixel or 1),
                "presets": presets,
            }
        )
    first = records[0]
    return {
        "measured": _measured(store, series, [n for n in known if any(n in i["presets"] for i in instances)]),
        "study": study,
        "series": series,
        "modality": first.modality or "",
        "description": str(_json_value(header, "0008103E") or ""),
        "rows": int(first.rows or 0),
        "columns": int(first.columns or 0),
        "windows": _header_windows(header),
        "voi_function": str(_json_value(header, "00281056") or "LINEAR").strip().upper(),
        "voi_luts": _voi_luts(store, first) if "00283010" in header else [],
        "presets": names,
        "instances": instances,
    }


def _header_windows(header: dict[str, Any]) -> list[list[Any]]:
    """Every usable Window Center / Width pair of a DICOM JSON header, with its explanation; for an
    enhanced object (none at the top level), those of its Frame VOI LUT functional group, shared or
    of the first frame (PS3.3 C.7.6.16.2.10; ``/rendered`` applied them, the page did not)."""
    top = _window_pairs(header)
    if top:
        return top
    for group in ("52009229", "52009230"):  # Shared, then Per-frame Functional Groups Sequence
        items = (header.get(group) or {}).get("Value") or []
        if items and isinstance(items[0], dict):
            for voi in (items[0].get("00289132") or {}).get("Value") or []:  # Frame VOI LUT Sequence
                if isinstance(voi, dict) and _window_pairs(voi):
                    return _window_pairs(voi)
    return []


def _window_pairs(header: dict[str, Any]) -> list[list[Any]]:
    """The Window Center / Width pairs of one DICOM JSON object (a header or a sequence item)."""

    def values(tag: str) -> list[Any]:
        return list((header.get(tag) or {}).get("Value") or [])

    centers, widths, notes = values("00281050"), values("00281051"), values("00281055")
    out: list[list[Any]] = []
    for k, (c, w) in enumerate(zip(centers, widths, strict=False)):
        center, width = _number(c), _number(w)
        note = str(notes[k]) if k < len(notes) and notes[k] else ""
        if center is not None and width is not None and width > 0 and [center, width] not in [o[:2] for o in out]:
            out.append([center, width, note])  # a pair repeated (Philips writes [40, 40] / [80, 80]) once
    return out


#: VOI LUTs longer than this are sent to the page one entry in every few (the page looks each value up).
MAX_PAGE_LUT = 16384


def _voi_luts(store: Any, record: Any) -> list[dict[str, Any]]:
    """The VOI LUT Sequence items of an instance (PS3.3 C.11.2.1.1) for the page: ``{"first", "step",
    "bits", "data", "explanation"}``, entry ``k`` of ``data`` for the input value ``first + k *
    step`` (the modality LUT's output; ``step`` 1 unless the LUT had more than :data:`MAX_PAGE_LUT`
    entries). Read from the
    original file: DICOM JSON names LUT data over 768 bytes by a bulk data URI only. An audit of
    2026-12-04: the page offered header windows only, a LUT-only radiograph showed linearly."""
    import pydicom

    from ..dicom.pixel_spec import voi_lut_table

    try:
        with store.open_original(record) as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)
        items = list(ds.get("VOILUTSequence") or [])
    except Exception:  # an unreadable header: no LUT offered, the page still windows
        return []
    out = []
    for item in items:
        table = voi_lut_table(item, ds)
        if table is None:
            continue
        first, lut, bits = table
        step = -(-lut.size // MAX_PAGE_LUT)
        out.append({"first": first, "step": step, "bits": bits, "data": lut[::step].tolist(),
                    "explanation": str(item.get("LUTExplanation", "") or "")})  # fmt: skip
    return out


def _measured(store: Any, series: str, names: list[str]) -> dict[str, Any]:
    """Per preset, the source stored values its numbers are measured on (see :func:`series_stack`)."""
    out: dict[str, Any] = {}
    for name in names:
        try:
            mapping = store.series_mapping(series, name)
        except CodecError:  # the page still draws; its difference pane then counts every pixel
            mapping = None
        if mapping is not None:
            out[name] = {
                "low": int(mapping.clip_low),
                "high": int(mapping.clip_high),
                "padding": list(mapping.padding) if mapping.padding is not None else None,
            }
    return out


def _instance_bytes(store: Any, record: Any, preset: str, study: str, series: str) -> bytes:
    """The DICOM file of ``record`` under ``preset``: stored rendition, else encoded now."""
    if preset == "original":
        from ..delivery.live import instance_bytes

        return instance_bytes(store, record, "*")[0]  # PS3.10 (a preamble-less file gets its file meta)
    rendition = store.rendition(record, preset)
    if rendition is not None:
        from ..delivery.live import read_rendition

        if (kept := read_rendition(store, rendition, record, preset)) is not None:
            return kept
    spec = _presets().get(preset)
    if spec is None or not hasattr(spec, "encode_instance"):  # pragma: no cover - presets always encode
        raise NotFoundError(f"preset {preset} is not computed for instance {record.sop_uid}")
    with store.open_original(record) as fp:
        data = bytes(fp.read())
    # live: the same encode_instance the pre-computation uses, without measuring (nothing is stored)
    return bytes(spec.encode_instance(data, mapping=store.series_mapping(series, preset), measure=False).data)


def frame_payload(
    store: Any, study: str, series: str, sop: str, n: int, preset: str
) -> tuple[bytes, dict[str, str], str]:
    """Bytes and headers of frame ``n`` (1-based) of one instance in one preset (module docstring).

    Raises
    ------
    NotFoundError
        Unknown instance, or no frame ``n``.
    InvalidInputError
        Unknown preset name.
    NotAcceptableError
        Colour, palette, 32-bit or undecodable pixel data (the page then shows ``/rendered``).
    """
    import pydicom
    from pydicom.encaps import get_frame

    from ..delivery.live import original_units, require_pixel_data
    from ..dicom import read_image
    from ..dicom.image import read_frame
    from ..dicom.pixel_spec import pixel_spec_from_dataset

    names = [*_presets(), MDC]
    if preset not in names:
        raise InvalidInputError(f"preset={preset[:40]!r} is unknown, expected one of {', '.join(names)}")
    record = _record(store, study, series, sop)
    if (record.samples_per_pixel or 1) != 1 or not record.rows:
        raise NotAcceptableError(
            f"instance {sop} is not a grayscale image ({record.samples_per_pixel} samples per pixel, "
            f"photometric {record.photometric or 'none'}); the viewer windows grayscale only, use /rendered"
        )
    frames = int(record.frames or 1)
    if n > frames:
        raise NotFoundError(f"instance {sop} has {frames} frame(s), frame {n} was asked for")
    if preset == MDC:
        return _mdc_payload(store, record, n)
    data = _instance_bytes(store, record, preset, study, series)
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    require_pixel_data(ds, sop)
    try:
        spec = pixel_spec_from_dataset(ds)
    except DicomError as exc:  # palette colour, 32-bit, float...: the page asks /rendered instead
        raise NotAcceptableError(f"instance {sop}: the viewer cannot window its pixels ({exc}); use /rendered") from exc
    if "ModalityLUTSequence" in ds:  # the page maps values by rescale only; /rendered applies the LUT
        # (it windowed the stored values: up to 247 grey levels off /rendered, an outside audit, 2026-12-05)
        raise NotAcceptableError(f"instance {sop}: a Modality LUT Sequence maps its values; use /rendered")
    ts = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    # the page windows and compares every pane in the original's values: a DX / mammography rendition
    # (rescale 1 / 0, its series mapping folded into its own VOI) is sent with the mapping's rescale
    slope, intercept = original_units(store, record, preset, ds) or (spec.rescale_slope, spec.rescale_intercept)
    headers = {
        "X-Rows": str(int(ds.Rows)),
        "X-Columns": str(int(ds.Columns)),
        "X-Bits-Stored": str(spec.bits_stored),
        "X-Signed": "1" if spec.signed else "0",
        "X-Rescale-Slope": repr(float(slope)),
        "X-Rescale-Intercept": repr(float(intercept)),
        "X-Photometric": spec.photometric_interpretation,
        "X-Transfer-Syntax": ts,
        "X-Preset": preset,
    }
    if ts in JPEG_SYNTAXES and not spec.signed:  # JPEG samples are unsigned (T.81 §A.1): signed ones are decoded here
        fragment = get_frame(ds.PixelData, n - 1, number_of_frames=frames)
        headers.update({"X-Encoding": "jpeg", "X-Stored-Bytes": str(len(fragment))})
        return bytes(fragment), headers, "image/jpeg"
    try:  # one frame of a multi-frame object decoded alone (read_image decodes every frame)
        pixels = read_frame(io.BytesIO(data), n - 1) if frames > 1 else read_image(io.BytesIO(data)).pixels[0]
    except DicomError as exc:  # pixel data no decoder here can read
        raise NotAcceptableError(f"instance {sop}: its pixels cannot be decoded ({exc})") from exc
    stored = len(ds.PixelData) // frames if "PixelData" in ds else pixels.nbytes
    return _deflated(pixels, spec, headers, stored)


def _deflated(pixels: np.ndarray, spec: Any, headers: dict[str, str], stored: int) -> tuple[bytes, dict[str, str], str]:
    signed, small = spec.signed, spec.bits_stored <= 8
    dtype, kind = ("u1", "uint8") if small and not signed else ("<i2", "int16") if signed else ("<u2", "uint16")
    raw = np.ascontiguousarray(pixels).astype(dtype, copy=False).tobytes()
    headers.update({"X-Encoding": "deflate", "X-Sample-Type": kind, "X-Stored-Bytes": str(stored)})
    return zlib.compress(raw, DEFLATE_LEVEL), headers, "application/x-medcodec-deflate"


def _mdc_payload(store: Any, record: Any, n: int) -> tuple[bytes, dict[str, str], str]:
    """Frame ``n`` coded as ``.mdc`` now (:data:`MDC`), decoded again, deflated like any sample payload."""
    from ..codec import decode, encode
    from ..dicom import read_image

    with store.open_original(record) as fp:
        data = fp.read()
    try:
        image = read_image(io.BytesIO(data))
    except DicomError as exc:  # palette colour, 32-bit, 1-bit, undecodable: as for the other presets
        import pydicom

        from ..delivery.live import require_pixel_data

        require_pixel_data(pydicom.dcmread(io.BytesIO(data), force=True), record.sop_uid)  # none: 404, as elsewhere
        raise NotAcceptableError(
            f"instance {record.sop_uid}: its pixels cannot be coded as .mdc ({exc}); use /rendered"
        ) from exc
    spec = image.spec
    frame = image.pixels[n - 1]
    diagnostic = store.rendition(record, "diagnostic")
    if diagnostic is not None and diagnostic.ratio:
        data = encode(frame, bits_stored=spec.bits_stored, signed=spec.signed, spec=spec, ratio=float(diagnostic.ratio))
    else:
        point = _presets()["diagnostic"].operating_point(image.dataset)
        quality = float(point.quality if point is not None and point.quality else 75)
        data = encode(frame, bits_stored=spec.bits_stored, signed=spec.signed, spec=spec, quality=quality)
    back = decode(data)
    headers = {
        "X-Rows": str(frame.shape[0]),
        "X-Columns": str(frame.shape[1]),
        "X-Bits-Stored": str(spec.bits_stored),
        "X-Signed": "1" if spec.signed else "0",
        "X-Rescale-Slope": repr(float(spec.rescale_slope)),
        "X-Rescale-Intercept": repr(float(spec.rescale_intercept)),
        "X-Photometric": spec.photometric_interpretation,
        "X-Transfer-Syntax": MDC,
        "X-Preset": MDC,
    }
    return _deflated(back.reshape(frame.shape), spec, headers, len(data))
