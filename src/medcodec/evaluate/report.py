"""Writing an :class:`~medcodec.evaluate.runner.EvaluationResult` to disk: JSON, CSV and HTML.

* ``results.json``: every metric of every point (codec x rate), the matched-rate and
  Bjøntegaard tables, the definitions, settings, input description and library versions.
  Infinite PSNR (lossless) is ``null``.
* ``results.csv``: one row per point, windowed metrics flattened (``soft_tissue_psnr_db``...).
* ``report.html``: self-contained (plots are embedded base64 PNGs rendered with matplotlib's Agg
  backend, no pyplot state): tables, rate-distortion plots, a speed chart, windowed
  side-by-side views of the original and decoded frame, and difference images.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._jitcache import matplotlib_config
from ..fileio import atomic_write, check_output_path
from . import metrics as M
from .runner import EvaluationResult, values_in_hu

# at import, not in figures(): the run's environment record (peers.library_versions) imports
# matplotlib before any figure is made; a home it cannot write made it warn on every run
matplotlib_config()

__all__ = ["write_report", "report_paths", "render_html", "points_csv", "REPORT_FILES", "figures"]

REPORT_FILES = {"html": "report.html", "json": "results.json", "csv": "results.csv"}

CSV_FIELDS = [
    "codec", "label", "mode", "knob", "knob_value", "target_bpp", "target_hit", "bytes", "raw_bytes",
    "bpp", "ratio", "psnr_db", "psnr_minmax_db", "psnr_min_frame_db", "mse", "rmse", "max_abs_error",
    "rmse_hu", "max_abs_error_hu", "ssim", "lossless", "encode_seconds", "decode_seconds",
    "encode_mb_s", "decode_mb_s",
]  # fmt: skip

#: Points' PSNR fields, infinite (JSON ``null``) where the point is lossless.
_PSNR_FIELDS = ("psnr_db", "psnr_minmax_db", "psnr_min_frame_db")

#: One colour and marker per codec, stable across plots.
_STYLE = {
    "medcodec": ("#d62728", "o"),
    "medcodec-arith": ("#e377c2", "o"),
    "medcodec-jpeg": ("#ff7f0e", "D"),
    "jpeg2000": ("#1f77b4", "s"),
    "htj2k": ("#17becf", "^"),
    "jpegls": ("#9467bd", "v"),
    "jpegxl": ("#2ca02c", "P"),
    "jpeg12": ("#8c564b", "X"),
    "avif": ("#bcbd22", "h"),
    "zlib": ("#7f7f7f", "*"),
}


def _style(codec: str, i: int) -> tuple[str, str]:
    fallback = ["#e377c2", "#bcbd22", "#393b79", "#637939"]
    return _STYLE.get(codec, (fallback[i % len(fallback)], "o"))


# --------------------------------------------------------------------------- CSV / JSON


def points_csv(result: EvaluationResult) -> str:
    """The points as CSV text (one row per codec and rate)."""
    wfields = []
    for w in result.windows:
        wfields += [f"{w.name}_psnr_db", f"{w.name}_max_abs_error_levels", f"{w.name}_ssim"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS + wfields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for p in result.to_dict()["points"]:
        row = {k: p.get(k) for k in CSV_FIELDS}
        exact = bool(p.get("lossless"))  # PSNR infinite: "inf" in the cell, not empty ("not available")
        for k in _PSNR_FIELDS:
            row[k] = "inf" if exact and row.get(k) is None else row.get(k)
        for w in result.windows:
            wm = p.get("windows", {}).get(w.name, {})
            row[f"{w.name}_psnr_db"] = "inf" if exact and wm.get("psnr_db") is None else wm.get("psnr_db")
            row[f"{w.name}_max_abs_error_levels"] = wm.get("max_abs_error_levels")
            row[f"{w.name}_ssim"] = wm.get("ssim")
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


# --------------------------------------------------------------------------- figures


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _codecs_with_lossy(result: EvaluationResult) -> list[str]:
    seen: list[str] = []
    for p in result.points:
        if p["mode"] == "lossy" and p["codec"] not in seen:
            seen.append(p["codec"])
    return seen


def _rd_figure(result: EvaluationResult) -> Any:
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    bits = result.spec.bits_stored
    panels: list[tuple[str, str, Any]] = [
        ("PSNR vs rate", f"PSNR (dB), peak 2^{bits}-1 = {result.spec.peak}", lambda p: p["psnr_db"]),
        ("SSIM vs rate", f"SSIM (data range 2^{bits}-1)", lambda p: p["ssim"]),
    ]
    for w in result.windows:
        name = w.name.replace("_", " ")
        panels.append(
            (f"PSNR in the {name} window vs rate",
             f"PSNR (dB), {name} window C={w.center:g} W={w.width:g}\n(display scale [0, 1], peak 1)",
             lambda p, n=w.name: p["windows"][n]["psnr_db"])
        )  # fmt: skip
    ncols = 2
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(12, 4.6 * nrows), layout="constrained")
    codecs = _codecs_with_lossy(result)
    fmt = FuncFormatter(lambda v, _pos: f"{v:g}")
    for k, (title, ylabel, get) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        for i, codec in enumerate(codecs):
            pts = result.points_of(codec)
            xs = [p["bpp"] for p in pts]
            ys = [get(p) for p in pts]
            ok = [(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y) and x > 0]
            if not ok:
                continue
            colour, marker = _style(codec, i)
            label = result.codecs.get(codec, {}).get("label", codec)
            ax.plot(*zip(*ok), color=colour, marker=marker, linewidth=1.8, markersize=6, label=label)
        if not ax.lines:  # e.g. a constant image: every point decoded exactly, PSNR infinite
            ax.text(0.5, 0.5, "no finite value to plot:\nevery point decodes exactly (lossless)", ha="center",
                    va="center", transform=ax.transAxes, fontsize=10, color="#555")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(LogLocator(base=2))
        ax.xaxis.set_major_formatter(fmt)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("bits per pixel (bpp, log scale)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.35)
        ax.set_title(title, fontsize=11)
    legend: dict[str, Any] = {}  # from every panel: the first may be empty (all its points lossless)
    for ax in fig.axes:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(name, handle)
    handles, labels = list(legend.values()), list(legend)
    if handles:
        # as many columns as the longest label lets fit in the figure's width (~6.5 px a character at
        # 10 pt, ~50 px of marker and gap): four clipped both edges with a series' shifted labels
        width_px = fig.get_figwidth() * fig.dpi
        fits = int(width_px * 0.95 // (6.5 * max(map(len, labels)) + 50))
        fig.legend(handles, labels, loc="outside lower center", ncols=max(1, min(4, len(handles), fits)), fontsize=10)
    fig.suptitle(f"Rate-distortion, {result.info.get('frames_evaluated', '?')} frame(s)", fontsize=13)
    return fig


def _speed_figure(result: EvaluationResult) -> Any:
    from matplotlib.figure import Figure

    rows = []
    for codec in [c for c in result.codecs if c not in result.skipped]:
        pts = [p for p in result.points if p["codec"] == codec]
        if not pts:
            continue
        lossy = [p for p in pts if p["mode"] == "lossy"]
        target = result.settings.get("view_bpp", 1.0)
        pick = min(lossy, key=lambda p: abs(math.log(p["bpp"] / target))) if lossy else pts[0]
        label = result.codecs.get(codec, {}).get("label", codec)
        rows.append((f"{label}\n{pick['bpp']:.2f} bpp", pick["encode_mb_s"], pick["decode_mb_s"], codec))
    fig = Figure(figsize=(10, 0.75 * max(3, len(rows)) + 1.5), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(rows))
    h = 0.38
    enc = [r[1] for r in rows]
    dec = [r[2] for r in rows]
    ax.barh(y - h / 2, enc, h, label="encode", color="#1f77b4")
    ax.barh(y + h / 2, dec, h, label="decode", color="#ff7f0e")
    for yi, (e, d) in enumerate(zip(enc, dec)):
        ax.text(e, yi - h / 2, f" {e:.0f}", va="center", fontsize=8)
        ax.text(d, yi + h / 2, f" {d:.0f}", va="center", fontsize=8)
    ax.set_yticks(y, [r[0] for r in rows], fontsize=9)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("throughput, MB/s of raw data (10^6 bytes/s, one thread, log scale)")
    ax.set_title("Encode and decode speed at the rate nearest the view rate")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    # beside the axes, not on them (inside, it covered the last bar's figure: an outside check)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside upper center", ncols=2, fontsize=9)
    return fig


def _view_figures(result: EvaluationResult) -> list[tuple[str, Any]]:
    """Windowed original vs decoded, one figure per window; then the difference images."""
    from matplotlib.figure import Figure

    if result.view_original is None or not result.view_decoded:
        return []
    spec = result.spec
    in_hu = values_in_hu(spec, result.info.get("modality"))
    unit = "HU" if in_hu else "output units"
    orig_u = spec.to_output_units(result.view_original)
    # lossless decodes equal the original: nothing to look at
    items = [(c, v) for c, v in result.view_decoded.items() if v[0]["mode"] == "lossy"]
    if not items:
        return []
    windows = list(result.windows) or [
        M.Window("full range", float((orig_u.max() + orig_u.min()) / 2), float(max(1.0, orig_u.max() - orig_u.min())))
    ]
    n = len(items) + 1
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    out: list[tuple[str, Any]] = []

    def label(c: str, p: dict[str, Any]) -> str:
        return f"{result.codecs.get(c, {}).get('label', c)}\n{p['bpp']:.2f} bpp ({p['ratio']:.0f}:1)"

    def grid(panels: list[tuple[str, NDArray[Any]]], w: M.Window, title: str) -> Any:
        """The panels side by side in window ``w``, pixels not interpolated."""
        fig = Figure(figsize=(3.6 * ncols, 3.9 * nrows), layout="constrained")
        for k, (name, img) in enumerate(panels):
            ax = fig.add_subplot(nrows, ncols, k + 1)
            ax.imshow(M.apply_window(img, center=w.center, width=w.width), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")  # fmt: skip
            ax.set_title(name, fontsize=9)
            ax.set_axis_off()
        fig.suptitle(title, fontsize=12)
        return fig

    for w in windows:
        # this frame's PSNR in the window (display scale [0, 1], peak 1), as the points' windowed PSNR
        # but of the frame shown: the points' figures pool every evaluated frame
        shown = M.apply_window(orig_u, center=w.center, width=w.width)
        panels = [("original", orig_u)]
        for c, (p, img) in items:
            dec_u = spec.to_output_units(img)
            frame_db = M.psnr(shown, M.apply_window(dec_u, center=w.center, width=w.width), peak=1.0)
            panels.append((f"{label(c, p)}, {_db(frame_db)}", dec_u))
        title = (f"Frame {result.view_frame_index} in the {w.name.replace('_', ' ')} window "
                 f"(C={w.center:g}, W={w.width:g}); PSNR of this frame in this window")  # fmt: skip
        out.append((f"Windowed view: {w.name.replace('_', ' ')}", grid(panels, w, title)))

    # zoomed: the central third of the frame in the first window, where detail is judged
    w = windows[0]
    rows, cols = orig_u.shape
    h, wd = max(8, rows // 3), max(8, cols // 3)
    r0, c0 = (rows - h) // 2, (cols - wd) // 2
    crop = (slice(r0, r0 + h), slice(c0, c0 + wd))
    zpanels = [("original", orig_u[crop])] + [(label(c, p), spec.to_output_units(img)[crop]) for c, (p, img) in items]
    fig = grid(
        zpanels, w,
        f"Zoom: rows {r0}-{r0 + h - 1}, columns {c0}-{c0 + wd - 1} of frame {result.view_frame_index}, "
        f"{w.name.replace('_', ' ')} window (C={w.center:g}, W={w.width:g}), pixels not interpolated",
    )  # fmt: skip
    out.append(("Zoomed view", fig))
    # CT only: the soft-tissue range is in HU (on MR signal it picked arbitrary blocks: an outside audit)
    soft = _soft_tissue_crop(orig_u) if in_hu else None
    if soft is not None:  # where flat 8x8 patches would show (issue 11)
        r0, c0, size = soft
        crop = (slice(r0, r0 + size), slice(c0, c0 + size))
        sw = M.Window("soft tissue", 40.0, 400.0)
        zpanels = [("original", orig_u[crop])] + [
            (f"{label(c, p)}\n{_texture_label(orig_u[crop], spec.to_output_units(img)[crop])}",
             spec.to_output_units(img)[crop])
            for c, (p, img) in items
        ]  # fmt: skip
        fig = grid(
            zpanels, sw,
            f"Soft-tissue zoom, frame {result.view_frame_index} rows {r0}-{r0 + size - 1} columns "
            f"{c0}-{c0 + size - 1}, C=40 W=400\nper panel: soft-tissue blocks decoded flat, median texture retention",
        )  # fmt: skip
        out.append(("Soft-tissue zoom (texture)", fig))

    diffs = [(c, p, spec.to_output_units(img) - orig_u) for c, (p, img) in items]
    allabs = np.concatenate([np.abs(d).ravel() for _, _, d in diffs])
    lim = float(max(1.0, np.percentile(allabs, 99.0)))
    ncols = min(4, len(diffs))
    fig = Figure(figsize=(3.9 * ncols + 0.8, 3.9 * math.ceil(len(diffs) / 4) + 0.4), layout="constrained")
    im = None
    for k, (c, p, d) in enumerate(diffs):
        ax = fig.add_subplot(math.ceil(len(diffs) / ncols), ncols, k + 1)
        im = ax.imshow(d, cmap="seismic", vmin=-lim, vmax=lim, interpolation="nearest")
        label = result.codecs.get(c, {}).get("label", c)
        # this frame's maximum error: the point's max_abs_error_hu is over every evaluated frame
        ax.set_title(f"{label}\n{p['bpp']:.2f} bpp, max |err| {float(np.max(np.abs(d))):.0f} {unit} here", fontsize=9)
        ax.set_axis_off()
    if im is not None:
        cb = fig.colorbar(im, ax=fig.axes, shrink=0.8)
        cb.set_label(f"decoded - original ({unit})\nclipped at +/-{lim:.0f}")
    fig.suptitle(f"Difference images, frame {result.view_frame_index}", fontsize=12)
    out.append(("Difference images", fig))
    return out


def _soft_tissue_crop(hu: NDArray[Any], size: int = 96) -> tuple[int, int, int] | None:
    """(row, column, size) of the block-aligned square with the most soft-tissue blocks of a CT
    frame in HU (:func:`.metrics.texture_block_stats`' definition), or None without any."""
    rows, cols = hu.shape
    by, bx = rows // 8, cols // 8
    size = min(size, 8 * by, 8 * bx)
    if size < 8:
        return None
    b = hu[: 8 * by, : 8 * bx].reshape(by, 8, bx, 8).transpose(0, 2, 1, 3).reshape(by, bx, 64)
    lo, hi = M.TEXTURE_HU_RANGE
    soft = ((b.min(axis=2) >= lo) & (b.max(axis=2) <= hi) & (b.std(axis=2) >= M.TEXTURE_MIN_STD_HU)).astype(np.int64)
    if not soft.any():
        return None
    n = size // 8
    c = np.pad(soft.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    counts = c[n:, n:] - c[:-n, n:] - c[n:, :-n] + c[:-n, :-n]
    i, j = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return 8 * int(i), 8 * int(j), size


def _texture_label(orig_hu: NDArray[Any], dec_hu: NDArray[Any]) -> str:
    t = M.texture_retention(orig_hu, dec_hu)
    if not t["blocks"]:
        return "no soft-tissue block"
    return f"{t['flattened_fraction'] * 100:.0f} % flat, retention {t['median_retention']:.2f}"


def figures(result: EvaluationResult) -> list[tuple[str, Any]]:
    """(title, matplotlib Figure) for every plot of the report."""
    figs: list[tuple[str, Any]] = []
    if _codecs_with_lossy(result):
        figs.append(("Rate-distortion", _rd_figure(result)))
    if result.points:
        figs.append(("Speed", _speed_figure(result)))
    figs += _view_figures(result)
    return figs


# --------------------------------------------------------------------------- HTML


def _db(v: Any) -> str:
    if v is None:
        return "lossless"
    return "lossless" if not math.isfinite(v) else f"{v:.2f} dB"


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "&infin;"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 2) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c, digits)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1250px;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #ddd}.note{color:#555;font-size:.9em}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;font-size:.9em}dt{font-weight:600}
.warn{color:#a30}
"""


def render_html(result: EvaluationResult) -> str:
    """The self-contained HTML report."""
    d = result.to_dict()
    info = d["input"]
    labels = {k: v.get("label", k) for k, v in result.codecs.items()}
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>medcodec evaluation</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>medcodec evaluation: medcodec and its peers on the same images</h1>",
    ]
    # input
    rows = [
        (k.replace("_", " "), v)
        for k, v in info.items()
        if k not in ("frame_indices", "frame_sources", "unreadable_inputs")
    ]
    parts.append("<h2>Input</h2>" + _table(["field", "value"], rows, digits=4))
    if info.get("frame_indices"):
        names = [Path(src).name for src in info.get("frame_sources") or []]
        parts.append(
            "<p class='note'>Frames evaluated (index in series order, file): "
            + html.escape(
                ", ".join(f"{i} ({n})" for i, n in zip(info["frame_indices"], names)) or str(info["frame_indices"])
            )
            + "</p>"
        )
    if info.get("lossy_source"):
        parts.append(
            "<p class='warn'>The source is already lossy-compressed (Lossy Image Compression 01 or a lossy "
            "transfer syntax): every codec is measured against its decoded pixels, not the acquired image, and a "
            "codec that repeats the source's compression (e.g. 12-bit JPEG of a JPEG source) looks better than it "
            "is.</p>"
        )
    if info.get("unreadable_inputs"):
        parts.append(f"<p class='warn'>{len(info['unreadable_inputs'])} input(s) could not be read.</p>")
    # skipped
    if result.skipped:
        parts.append("<h2>Codecs skipped</h2><ul>")
        parts += [f"<li class='warn'>{html.escape(msg)}</li>" for msg in result.skipped.values()]
        parts.append("</ul>")
    # matched
    codecs_lossy = _codecs_with_lossy(result)
    targets = list(dict.fromkeys(r["target"] for r in d["matched"]))
    if codecs_lossy and targets:
        parts.append("<h2>Matched rates</h2>")
        parts.append(
            "<p class='note'>Values at each target interpolated linearly in log(bpp) between the codec's two "
            "nearest points; &ndash; = outside the codec's points. Ratios use the raw size "
            f"({M.raw_bytes_per_pixel(result.spec.bits_stored)} byte(s)/pixel).</p>"
        )
        metrics = [("psnr_db", "PSNR (dB)", 2), ("ssim", "SSIM", 4)]
        for w in result.windows:
            metrics.append((f"{w.name}_psnr_db", f"PSNR, {w.name.replace('_', ' ')} window (dB)", 2))
        if any(r.get("texture_median_retention") is not None for r in d["matched"]):
            metrics += [
                ("texture_flattened_fraction",
                 "Texture: share of soft-tissue blocks decoded flat (retention < 0.35)", 3),
                ("texture_median_retention", "Texture: median retention, std(decoded) / std(original) per soft-tissue "
                 "block (-150..250 HU, std >= 8 HU)", 3),
            ]  # fmt: skip
        for key, title, digits in metrics:
            tab = []
            for codec in codecs_lossy:
                by_t = {r["target"]: r.get(key) for r in d["matched"] if r["codec"] == codec}
                tab.append([labels.get(codec, codec), *[by_t.get(t) for t in targets]])
            parts.append(f"<h3>{html.escape(title)}</h3>" + _table(["codec", *targets], tab, digits))
    # BD
    if d["bd"]:
        parts.append(f"<h2>Bjøntegaard deltas against {html.escape(labels.get(d['anchor'], d['anchor']))}</h2>")
        parts.append(
            "<p class='note'>BD-rate: average rate difference at equal PSNR (negative = fewer bits than the "
            "anchor). BD-PSNR: average PSNR difference at equal rate (positive = better). Cubic: VCEG-M33; "
            "PCHIP: JCTVC-L1100. Stated: the cubic's, or PCHIP's where the cubic fit is not monotonic over the "
            "overlap or its BD-rate is implausible (the note says which and why).</p>"
        )
        tab = [
            [labels.get(r["codec"], r["codec"]), _stated(r.get("bd_rate_pct"), r.get("bd_rate_method")),
             r["bd_rate_cubic_pct"], r["bd_psnr_cubic_db"], r["bd_rate_pchip_pct"], r["bd_psnr_pchip_db"], r["note"]]
            for r in d["bd"]
        ]  # fmt: skip
        headers = ["codec", "BD-rate stated (%)", "BD-rate cubic (%)", "BD-PSNR cubic (dB)", "BD-rate PCHIP (%)",
                   "BD-PSNR PCHIP (dB)", "note"]  # fmt: skip
        parts.append(_table(headers, tab))
    # lossless
    lossless = [p for p in d["points"] if p["mode"] == "lossless"]
    if lossless:
        parts.append("<h2>Lossless</h2>")
        tab = [[labels.get(p["codec"], p["codec"]), p["bpp"], p["ratio"], p["max_abs_error"], p["encode_mb_s"],
                p["decode_mb_s"]] for p in lossless]  # fmt: skip
        parts.append(_table(["codec", "bpp", "ratio", "max |error|", "encode MB/s", "decode MB/s"], tab))
    # figures
    for title, fig in figures(result):
        parts.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
                     f"src='data:image/png;base64,{_png(fig)}'>")  # fmt: skip
    # all points
    parts.append("<h2>All points</h2>")
    cols = ["codec", "knob", "knob_value", "target_bpp", "bpp", "ratio", "psnr_db", "psnr_minmax_db", "ssim",
            "rmse_hu", "max_abs_error_hu", "encode_mb_s", "decode_mb_s"]  # fmt: skip
    unit = "HU" if values_in_hu(result.spec, info.get("modality")) else "output units"

    def cell(p: dict[str, Any], c: str) -> Any:
        if c in _PSNR_FIELDS and p.get(c) is None and p.get("lossless"):
            return math.inf  # lossless: "&infin;", not "&ndash;" (not available)
        return p.get(c)

    tab = [[labels.get(p["codec"], p["codec"])] + [cell(p, c) for c in cols[1:]] for p in d["points"]]
    heads = {"rmse_hu": f"rmse ({unit})", "max_abs_error_hu": f"max |error| ({unit})"}
    parts.append(_table([heads.get(c, c.replace("_", " ")) for c in cols], tab, digits=3))
    # definitions, settings, environment
    parts.append("<h2>Definitions</h2><dl>")
    parts += [f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in d["definitions"].items()]
    parts.append("</dl><h2>Codecs and settings</h2>")
    tab = [
        [v.get("label", k), v.get("version"), _knob(v).get("name"), _knob(v).get("description")]
        for k, v in d["codecs"].items()
    ]
    parts.append(_table(["codec", "library", "knob", "meaning"], tab))
    parts.append(f"<pre>{html.escape(json.dumps(d['settings'], indent=1))}</pre>")
    env = d["environment"]
    parts.append("<h2>Environment</h2>")
    parts.append(_table(["item", "value"], [(k, v) for k, v in env.items() if k != "libraries"]
                        + [(k, v) for k, v in env.get("libraries", {}).items() if k not in env]))  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts)


def report_paths(directory: str | os.PathLike[str], *, overwrite: bool = False) -> dict[str, Path]:
    """The files :func:`write_report` writes into ``directory``, checked: call it before the
    sweep, so that a report in the way stops the run before any coding, not after it.

    Raises
    ------
    OutputExistsError
        A report file exists already and ``overwrite`` is false.
    """
    out = Path(directory)
    return {k: check_output_path(out / name, overwrite=overwrite) for k, name in REPORT_FILES.items()}


def write_report(
    result: EvaluationResult,
    directory: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write ``report.html``, ``results.json`` and ``results.csv`` into ``directory``.

    Raises
    ------
    OutputExistsError
        A report file exists already and ``overwrite`` is false (an ``InvalidInputError`` too).
    """
    out = Path(directory)
    paths = report_paths(out, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(paths["json"], json.dumps(result.to_dict(), indent=1, allow_nan=False).encode("utf-8"))
    atomic_write(paths["csv"], points_csv(result).encode("utf-8"))
    atomic_write(paths["html"], render_html(result).encode("utf-8"))
    return paths


def _stated(value: float | None, method: str | None) -> str | None:
    """A stated BD-rate with its method when that is not the cubic: ``"-72.46 (PCHIP)"``."""
    if value is None:
        return None
    return f"{value:.2f}" + (f" ({method.upper()})" if method and method != "cubic" else "")


def _knob(codec: dict[str, Any]) -> dict[str, Any]:
    """A codec record's knob description (empty for lossless-only codecs)."""
    return codec.get("knob") or {}
