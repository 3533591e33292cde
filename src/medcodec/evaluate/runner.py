"""Rate-distortion sweeps of several codecs on the same frames, in the same run.

For each codec: find the knob values that reach the target rates (on a few calibration frames,
:mod:`~medcodec.evaluate.ratecontrol`), then code every frame at each value, timing encode and
decode per frame (:mod:`~medcodec.evaluate.timing`) and measuring the decoded frames against the
originals (:mod:`~medcodec.evaluate.metrics`). From the points: PSNR and SSIM at matched rates
(interpolated linearly in log bpp between the two nearest points, never extrapolated) and the
Bjøntegaard deltas of every codec against the anchor (JPEG 2000 by default).
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..codec.levelshift import check_range
from ..errors import InvalidInputError
from ..progress import Counter, ProgressCallback
from ..spec import PixelSpec
from . import metrics as M
from .bjontegaard import SANE_RATE_FACTOR, SMALL_OVERLAP, bd_delta, bd_psnr, bd_rate
from .peers import BaseAdapter, CodecAdapter, ShiftedAdapter, library_versions, shifted_for
from .ratecontrol import KnobSearch, calibration_indices
from .timing import cpu_model, timed

__all__ = [
    "DEFAULT_RATES",
    "MATCH_BPP",
    "MATCH_RATIOS",
    "EvaluationResult",
    "evaluate_point",
    "run_evaluation",
    "matched_table",
    "bd_table",
    "values_in_hu",
    "definitions",
]

#: Default target rates (bpp): the matched-rate targets 0.25/0.5/1/2 bpp and, for 9-16-bit data
#: (2 bytes per raw pixel), 40:1 = 0.4, 20:1 = 0.8 and 10:1 = 1.6 bpp.
DEFAULT_RATES: tuple[float, ...] = (0.25, 0.4, 0.5, 0.8, 1.0, 1.6, 2.0)
MATCH_BPP: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
MATCH_RATIOS: tuple[float, ...] = (40.0, 20.0, 10.0)

#: Metrics interpolated at matched rates (plus the windowed PSNR and SSIM of every window).
MATCHED_METRICS = ("psnr_db", "ssim", "psnr_minmax_db", "texture_flattened_fraction", "texture_median_retention")

Progress = Callable[[str], None]


def definitions(spec: PixelSpec) -> dict[str, str]:
    """The definitions behind every number, written into every report."""
    raw = M.raw_bytes_per_pixel(spec.bits_stored)
    return {
        "raw_size": f"{raw} byte(s) per pixel (1 for bits_stored <= 8, else 2); this input: "
        f"bits_stored={spec.bits_stored}",
        "bpp": "8 * compressed bytes / pixels (all evaluated frames together)",
        "ratio": "raw size / compressed size",
        "psnr_db": f"10 log10(peak^2 / MSE), peak = 2^bits_stored - 1 = {spec.peak}; MSE over all evaluated "
        "pixels; lossless = null in JSON",
        "psnr_minmax_db": "PSNR with peak = max - min of the original frames (dynamic-range convention)",
        "psnr_min_frame_db": "PSNR of the worst single frame",
        "rmse, max_abs_error": "in stored units",
        "rmse_hu, max_abs_error_hu": f"in output units after rescale (x |slope| = {abs(spec.rescale_slope)}); "
        "HU for CT",
        "ssim": "Wang et al. 2004 via skimage.metrics.structural_similarity, data_range = 2^bits_stored - 1, "
        f"Gaussian window sigma 1.5, population covariance; mean over frames; null for frames smaller than the "
        f"{M.SSIM_MIN_SIDE}x{M.SSIM_MIN_SIDE} window (not defined)",
        "windows": "DICOM linear VOI window (PS3.3 C.11.2.1.2.1) to a [0, 1] display scale; PSNR peak 1; "
        "max_abs_error_levels in gray levels of an 8-bit display (x255); SSIM data_range 1",
        "encode_mb_s, decode_mb_s": "raw MB (10^6 bytes) per second, one frame at a time on one thread, "
        "time.perf_counter; includes the adapter's sample mapping",
        "matched": "metrics at a target bpp interpolated linearly in log(bpp) between the two nearest "
        "points of the codec; null when the target is outside the codec's points",
        "bd": "Bjontegaard delta of each codec against the anchor: cubic fit (VCEG-M33) and PCHIP "
        "(JCTVC-L1100); BD-rate in %, negative = fewer bits than the anchor at equal PSNR. bd_rate_pct and "
        "bd_psnr_db (the figures stated, method in bd_rate_method / bd_psnr_method): the cubic's, or PCHIP's when "
        f"a cubic fit is not monotonic over the overlap or the cubic BD-rate is beyond a factor {SANE_RATE_FACTOR:g} "
        f"in rate; the note says why, and when the curves overlap over less than {SMALL_OVERLAP:.0%} of either's "
        "range",
    }


# --------------------------------------------------------------------------- one point


def evaluate_point(
    adapter: CodecAdapter,
    pixels: NDArray[Any],
    spec: PixelSpec,
    target: float | None,
    *,
    windows: Sequence[M.Window] = (),
    with_ssim: bool = True,
    repeat: int = 1,
    keep_frame: int | None = None,
) -> tuple[dict[str, Any], NDArray[Any] | None]:
    """Code every frame of ``pixels`` at knob value ``target``; measure size, speed and quality.

    Returns the point (a JSON-ready dict, PSNR ``inf`` when lossless) and the decoded frame
    ``keep_frame`` (or ``None``).

    Raises
    ------
    InvalidInputError
        A decoded frame has the wrong shape.
    """
    acc = M.MetricsAccumulator(spec, windows=windows, with_ssim=with_ssim)
    n_bytes = 0
    t_enc = t_dec = 0.0
    kept = None
    is_ct = values_in_hu(spec)
    retentions = []  # texture of soft-tissue blocks (CT only: the soft-tissue range is in HU)
    for i, frame in enumerate(pixels):
        data, s = timed(adapter.encode, frame, spec, target=target, repeat=repeat)
        t_enc += s
        n_bytes += len(data)
        decoded, s = timed(adapter.decode, data, spec, shape=frame.shape, repeat=repeat)
        t_dec += s
        decoded = np.asarray(decoded)
        if decoded.shape != frame.shape:
            raise InvalidInputError(f"{adapter.name}: decoded shape {decoded.shape}, expected {frame.shape}")
        acc.add(frame, decoded)
        if is_ct:
            retentions.append(M.texture_block_stats(frame, decoded, rescale_slope=spec.rescale_slope,
                                                    rescale_intercept=spec.rescale_intercept))  # fmt: skip
        if i == keep_frame:
            kept = decoded.copy()
    n_pixels = int(pixels.size)
    raw = M.raw_size(n_pixels, spec.bits_stored)
    knob = adapter.knob
    point: dict[str, Any] = {
        "codec": adapter.name,
        "label": _label(adapter, spec),
        "knob": knob.name if knob and target is not None else ("lossless" if target is None else None),
        "knob_value": target,
        "mode": "lossless" if target is None else "lossy",
        "bytes": n_bytes,
        "raw_bytes": raw,
        "bpp": M.bits_per_pixel(n_bytes, n_pixels),
        "ratio": M.compression_ratio(n_bytes, n_pixels, spec.bits_stored),
        "encode_seconds": t_enc,
        "decode_seconds": t_dec,
        "encode_mb_s": M.mb_per_s(raw, t_enc),
        "decode_mb_s": M.mb_per_s(raw, t_dec),
    }
    point.update(acc.result())
    if retentions:
        ret = np.concatenate(retentions)
        point["texture_blocks"] = int(ret.size)
        point["texture_flattened_fraction"] = float(np.mean(ret < M.TEXTURE_FLAT_RETENTION)) if ret.size else None
        point["texture_median_retention"] = float(np.median(ret)) if ret.size else None
    return point, kept


# --------------------------------------------------------------------------- result


@dataclass
class EvaluationResult:
    """Everything one evaluation produced; :meth:`to_dict` is the JSON written to disk."""

    info: dict[str, Any]
    spec: PixelSpec
    definitions: dict[str, str]
    codecs: dict[str, dict[str, Any]]
    skipped: dict[str, str]
    points: list[dict[str, Any]]
    matched: list[dict[str, Any]]
    bd: list[dict[str, Any]]
    anchor: str | None
    settings: dict[str, Any]
    environment: dict[str, Any]
    windows: tuple[M.Window, ...] = ()
    #: not serialised: original frame and decoded frames for the report's image views
    view_original: NDArray[Any] | None = None
    view_frame_index: int | None = None
    view_decoded: dict[str, tuple[dict[str, Any], NDArray[Any]]] = field(default_factory=dict)

    def points_of(self, codec: str, *, lossy_only: bool = True) -> list[dict[str, Any]]:
        pts = [p for p in self.points if p["codec"] == codec and (not lossy_only or p["mode"] == "lossy")]
        return sorted(pts, key=lambda p: p["bpp"])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _json_safe(
            {
                "tool": "medcodec evaluate",
                "input": self.info,
                "definitions": self.definitions,
                "settings": self.settings,
                "environment": self.environment,
                "codecs": self.codecs,
                "skipped": self.skipped,
                "anchor": self.anchor,
                "points": self.points,
                "matched": self.matched,
                "bd": self.bd,
            }
        )
        return out


def _json_safe(obj: Any) -> Any:
    """Plain JSON: numpy scalars to Python, inf/nan to None (lossless PSNR is null)."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


# --------------------------------------------------------------------------- tables


def _lossy_curve(points: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lossy points with finite PSNR, sorted by bpp, one per distinct bpp."""
    out: dict[float, dict[str, Any]] = {}
    for p in points:
        if p["mode"] == "lossy" and p["psnr_db"] is not None and math.isfinite(p["psnr_db"]):
            out.setdefault(round(p["bpp"], 9), p)
    return [out[k] for k in sorted(out)]


def _metric(p: dict[str, Any], key: str) -> float | None:
    if key.startswith("window:"):
        _, name, sub = key.split(":")
        w = p.get("windows", {}).get(name)
        v = None if w is None else w.get(sub)
    else:
        v = p.get(key)
    return None if v is None or not math.isfinite(v) else float(v)


def _interpolate(curve: list[dict[str, Any]], bpp: float, key: str) -> float | None:
    """Value of ``key`` at ``bpp``, linear in log(bpp) between neighbours; None outside the curve.

    A target within 2 % of an end point takes that point's value (rate search tolerance).
    """
    if not curve:
        return None
    xs = [math.log(p["bpp"]) for p in curve]
    x = math.log(bpp)
    tol = math.log1p(0.02)
    if x < xs[0] - tol or x > xs[-1] + tol:
        return None
    x = min(max(x, xs[0]), xs[-1])
    for i in range(len(xs) - 1):
        if xs[i] <= x <= xs[i + 1]:
            a, b = _metric(curve[i], key), _metric(curve[i + 1], key)
            if a is None or b is None:
                return None
            t = 0.0 if xs[i + 1] == xs[i] else (x - xs[i]) / (xs[i + 1] - xs[i])
            return a + t * (b - a)
    return _metric(curve[0], key)


def matched_table(
    points: Sequence[dict[str, Any]],
    codecs: Sequence[str],
    spec: PixelSpec,
    windows: Sequence[M.Window] = (),
    *,
    bpps: Sequence[float] = MATCH_BPP,
    ratios: Sequence[float] = MATCH_RATIOS,
) -> list[dict[str, Any]]:
    """PSNR, SSIM (and windowed PSNR/SSIM) of every codec at each target bpp and ratio."""
    targets = [(f"{b:g} bpp", b) for b in bpps]
    targets += [(f"{r:g}:1", M.bpp_for_ratio(r, spec.bits_stored)) for r in ratios]
    keys = list(MATCHED_METRICS)
    for w in windows:
        keys += [f"window:{w.name}:psnr_db", f"window:{w.name}:ssim"]
    rows = []
    for codec in codecs:
        curve = _lossy_curve(p for p in points if p["codec"] == codec)
        for label, bpp in targets:
            row: dict[str, Any] = {"codec": codec, "target": label, "target_bpp": bpp}
            for key in keys:
                name = key.replace("window:", "").replace(":", "_")
                row[name] = _interpolate(curve, bpp, key)
            rows.append(row)
    return rows


def _monotone(curve: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the points whose PSNR rises with bpp (drops plateaus the rate search can produce)."""
    out: list[dict[str, Any]] = []
    for p in curve:
        if not out or p["psnr_db"] > out[-1]["psnr_db"]:
            out.append(p)
    return out


def bd_table(points: Sequence[dict[str, Any]], codecs: Sequence[str], anchor: str | None) -> list[dict[str, Any]]:
    """Bjøntegaard delta rate (%) and PSNR (dB) of each codec against ``anchor``, both methods
    (``bd_rate_cubic_pct``...), and the figures to state (``bd_rate_pct``, ``bd_psnr_db``, with
    ``bd_rate_method`` / ``bd_psnr_method`` and the caveats ``bd_rate_notes`` / ``bd_psnr_notes``):
    the cubic's unless it misbehaves, then PCHIP's, as
    :func:`~medcodec.evaluate.bjontegaard.bd_delta` decides. ``note``: every caveat and failure."""
    rows: list[dict[str, Any]] = []
    if anchor is None:
        return rows
    ref = _monotone(_lossy_curve(p for p in points if p["codec"] == anchor))
    for codec in codecs:
        if codec == anchor:
            continue
        cur = _monotone(_lossy_curve(p for p in points if p["codec"] == codec))
        row: dict[str, Any] = {"codec": codec, "anchor": anchor, "points": len(cur), "anchor_points": len(ref)}
        args = ([p["bpp"] for p in ref], [p["psnr_db"] for p in ref],
                [p["bpp"] for p in cur], [p["psnr_db"] for p in cur])  # fmt: skip
        failed: dict[str, list[str]] = {}  # message -> methods it came from
        for method in ("cubic", "pchip"):
            try:
                row[f"bd_rate_{method}_pct"] = bd_rate(*args, method=method)
                row[f"bd_psnr_{method}_db"] = bd_psnr(*args, method=method)
            except InvalidInputError as exc:
                row[f"bd_rate_{method}_pct"] = row[f"bd_psnr_{method}_db"] = None
                failed.setdefault(str(exc), []).append(method)
        # the figures to state: the cubic where it is sound, else PCHIP, with why (bjontegaard.bd_delta)
        notes = [msg if len(methods) == 2 else f"{methods[0]}: {msg}" for msg, methods in failed.items()]
        for kind, key, label in (("rate", "bd_rate_pct", "BD-rate"), ("psnr", "bd_psnr_db", "BD-PSNR")):
            method = key.rpartition("_")[0] + "_method"
            try:
                delta = bd_delta(*args, kind=kind)
            except InvalidInputError:  # already in the notes
                row[key] = row[method] = None
                row[f"{key.rpartition('_')[0]}_notes"] = []
                continue
            row[key], row[method] = delta.value, delta.method
            row[f"{key.rpartition('_')[0]}_notes"] = list(delta.notes)
            notes += [f"{label}: {n}" for n in delta.notes]
        row["note"] = "; ".join(dict.fromkeys(notes))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- the run


def _as_stack(pixels: NDArray[Any], spec: PixelSpec) -> NDArray[Any]:
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.size == 0:
        raise InvalidInputError(f"expected a 2-D frame or a (frames, rows, cols) stack, got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise InvalidInputError(f"expected integer pixels, got dtype {a.dtype}")
    check_range(a, spec.bits_stored, spec.signed)
    return a


def _label(adapter: CodecAdapter, spec: PixelSpec) -> str:
    """``adapter``'s label for ``spec``'s data (:meth:`.BaseAdapter.label_for`)."""
    return adapter.label_for(spec) if isinstance(adapter, (BaseAdapter, ShiftedAdapter)) else adapter.label


def values_in_hu(spec: PixelSpec, modality: str | None = None) -> bool:
    """Whether ``spec``'s output units (after rescale) are Hounsfield units: CT, or Rescale Type HU.
    The texture metric (defined in HU) and the report's "HU" labels only apply then; other data is
    in its own output units (MR signal, 8-bit pixels)."""
    return (modality or spec.extra.get("modality")) == "CT" or spec.rescale_type.upper() == "HU"


def _environment() -> dict[str, Any]:
    import os

    return {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "libraries": library_versions(),
    }


def run_evaluation(
    pixels: NDArray[Any],
    spec: PixelSpec,
    adapters: Sequence[CodecAdapter],
    *,
    rates: Sequence[float] | None = DEFAULT_RATES,
    knob_values: Mapping[str, Sequence[float]] | None = None,
    windows: Sequence[M.Window] | None = None,
    modality: str | None = None,
    anchor: str | None = "jpeg2000",
    include_lossless: bool = True,
    calibration_frames: int = 4,
    rate_tolerance: float = 0.02,
    with_ssim: bool = True,
    repeat: int = 1,
    view_frame: int | None = None,
    view_bpp: float = 1.0,
    info: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    log: Progress | None = None,
) -> EvaluationResult:
    """Rate-distortion sweep of ``adapters`` on ``pixels``.

    Parameters
    ----------
    pixels
        ``(frames, rows, cols)`` (or one 2-D frame) of stored values.
    spec
        Their meaning; ``bits_stored`` sets the PSNR peak and the raw size.
    adapters
        Codecs to run; unavailable ones and ones that do not support ``spec`` are skipped with
        their message in :attr:`EvaluationResult.skipped`.
    rates
        Target bpp for every codec with a knob (searched on ``calibration_frames`` frames).
    knob_values
        Per codec name, explicit knob values to use instead of ``rates``.
    windows
        Display windows for the windowed metrics; default :func:`metrics.default_windows`.
    anchor
        Codec the Bjøntegaard deltas are computed against (JPEG 2000); ``None``: no deltas.
    include_lossless
        Also code losslessly with every codec that can.
    view_frame, view_bpp
        Frame (index into ``pixels``, default the middle one) and rate of the report's images.
    progress
        ``progress(points_done, total)`` after each point (:mod:`medcodec.progress`).
    log
        Called with one line per skipped codec or failure.

    Raises
    ------
    InvalidInputError
        Bad pixels, rates or knob values.
    """
    stack = _as_stack(pixels, spec)
    if rates is not None and any(not (r > 0 and math.isfinite(r)) for r in rates):
        raise InvalidInputError(f"rates={list(rates)} must be positive bpp values")
    knob_values = dict(knob_values or {})
    wins = tuple(M.default_windows(spec, modality) if windows is None else windows)
    say: Progress = log or (lambda _msg: None)
    view_index = stack.shape[0] // 2 if view_frame is None else int(view_frame)
    if not 0 <= view_index < stack.shape[0]:
        raise InvalidInputError(f"view frame {view_frame} is outside 0..{stack.shape[0] - 1}")

    usable: list[CodecAdapter] = []
    skipped: dict[str, str] = {}
    codecs: dict[str, dict[str, Any]] = {}
    for ad in adapters:
        desc = ad.describe() if isinstance(ad, BaseAdapter) else {"name": ad.name, "label": ad.label}
        desc["label"] = _label(ad, spec)
        codecs[ad.name] = desc
        if not ad.is_available():
            skipped[ad.name] = ad.why_unavailable or f"{ad.name} skipped: not available"
        elif (why := ad.supports(spec)) is not None:
            shifted = shifted_for(ad, stack, spec) if isinstance(ad, BaseAdapter) else None
            if shifted is not None:  # a series declaring more bits than its values span
                usable.append(shifted)
                codecs[ad.name] = shifted.describe()
                say(f"{ad.name}: {spec.bits_stored}-bit data whose values fit in {shifted.bits} bits, coded as "
                    f"{shifted.label!r}")  # fmt: skip
                continue
            if isinstance(ad, BaseAdapter) and spec.bits_stored > ad.max_bits_stored:
                low, high = int(np.min(stack)), int(np.max(stack))
                why += f", and its values {low}..{high} span more than {ad.max_bits_stored} bits"
            skipped[ad.name] = why
        else:
            usable.append(ad)
            continue
        say(skipped[ad.name])
    for name in knob_values:
        if name not in codecs:
            raise InvalidInputError(f"--qualities names codec {name!r}, which is not being evaluated")

    for ad in list(usable):  # a codec that codes a series as its writer does sees the whole stack first
        hook = getattr(ad, "for_series", None)
        if hook is None:
            continue
        try:
            hook(stack, spec)
        except Exception as exc:  # as a failing encode: this codec is left out, the others go on
            usable.remove(ad)
            skipped[ad.name] = f"{ad.name} skipped: {type(exc).__name__}: {exc}"
            say(skipped[ad.name])

    # plan: (adapter, list of (knob value | None, target bpp | None))
    cal = stack[calibration_indices(stack.shape[0], calibration_frames)]
    cal_pixels = int(cal.size)
    plans: list[tuple[CodecAdapter, list[tuple[float | None, list[float], bool]]]] = []
    n_tasks = 0
    for ad in usable:
        tasks: list[tuple[float | None, list[float], bool]] = []
        if ad.knob is not None and not getattr(ad, "lossless_only", False):
            if ad.name in knob_values:
                tasks += [(float(v), [], True) for v in knob_values[ad.name]]
            elif rates:
                tasks += [(None, [float(r)], False) for r in rates]  # value found later
        if (include_lossless and ad.lossless) or ad.knob is None or getattr(ad, "lossless_only", False):
            tasks.append((None, [], True))
        plans.append((ad, tasks))
        n_tasks += len(tasks)

    points: list[dict[str, Any]] = []
    kept: dict[int, NDArray[Any]] = {}
    bar = Counter(progress, total=n_tasks)
    for ad, tasks in plans:
        search: KnobSearch | None = None
        if ad.knob is not None:

            def bpp_of(v: float, ad: CodecAdapter = ad) -> float:
                return 8.0 * sum(len(ad.encode(f, spec, target=v)) for f in cal) / cal_pixels

            search = KnobSearch(bpp_of, ad.knob)
        done: dict[float | None, dict[str, Any]] = {}
        try:
            for value, targets, fixed in tasks:
                search_info: dict[str, Any] = {}
                if not fixed:
                    assert search is not None
                    res = search.find(targets[0], rel_tol=rate_tolerance)
                    value = res.value
                    search_info = {"target_bpp": res.target_bpp, "calibration_bpp": res.bpp, "target_hit": res.hit}
                if value in done and not fixed:
                    # two targets reach the same knob value (range end): record the target only
                    done[value].setdefault("also_targets", []).append(targets[0])
                    bar.advance(1)
                    continue
                point, frame = evaluate_point(
                    ad, stack, spec, value, windows=wins, with_ssim=with_ssim, repeat=repeat,
                    keep_frame=view_index,
                )  # fmt: skip
                point.update(search_info)
                point.setdefault("target_bpp", None)
                points.append(point)
                done[value] = point
                if frame is not None:
                    kept[id(point)] = frame
                bar.advance(1)
        except Exception as exc:  # one codec failing must not lose the others' results
            msg = f"{ad.name} failed: {type(exc).__name__}: {exc}"
            skipped[ad.name] = msg
            say(msg)
            bar.advance(max(0, len(tasks) - len(done)))

    order = [ad.name for ad in usable if ad.name not in skipped]
    lossy = [c for c in order if any(p["codec"] == c and p["mode"] == "lossy" for p in points)]
    anchor_used = anchor if anchor in lossy else None
    if anchor is not None and anchor_used is None:
        say(f"anchor {anchor!r} has no results: no Bjøntegaard deltas")
    result = EvaluationResult(
        info=dict(info or {}),
        spec=spec,
        definitions=definitions(spec),
        codecs=codecs,
        skipped=skipped,
        points=points,
        matched=matched_table(points, lossy, spec, wins),
        bd=bd_table(points, lossy, anchor_used),
        anchor=anchor_used,
        settings={
            "rates_bpp": list(rates) if rates else [],
            "knob_values": {k: list(v) for k, v in knob_values.items()},
            "windows": [{"name": w.name, "center": w.center, "width": w.width} for w in wins],
            "calibration_frames": calibration_frames,
            "rate_tolerance": rate_tolerance,
            "include_lossless": include_lossless,
            "view_frame": view_index,
            "view_bpp": view_bpp,
            "repeat": repeat,
        },
        environment=_environment(),
        windows=wins,
        view_original=stack[view_index].copy(),
        view_frame_index=view_index,
    )
    # images for the report: per codec, the decoded view frame at the point nearest view_bpp
    for codec in order:
        cands = [p for p in points if p["codec"] == codec and p["mode"] == "lossy" and id(p) in kept]
        if not cands:
            cands = [p for p in points if p["codec"] == codec and id(p) in kept]
        if cands:
            best = min(cands, key=lambda p: abs(math.log(p["bpp"] / view_bpp)) if p["bpp"] > 0 else math.inf)
            result.view_decoded[codec] = (best, kept[id(best)])
    return result
