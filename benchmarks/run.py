#!/usr/bin/env python3
"""Speed and size of medcodec against every available peer, in the same run, printed as ratios.

Usage (from the repository root; ``make bench`` runs the first line)::

    python benchmarks/run.py                       # ../shared/data, 12 frames per series
    python benchmarks/run.py --data DIR --frames 24 --threads 4
    python benchmarks/run.py --markdown docs/benchmarks.md --json bench.json

For each series found under ``--data`` (the folder itself if it holds DICOM files, else each
subfolder; a folder whose longest series has fewer than 4 distinct frames, or frames smaller than
``--min-size``, is skipped):

1. every codec reaches ``--bpp`` (default 1.0) through its own knob (rate search on 4 frames,
   :mod:`medcodec.evaluate.ratecontrol`); PSNR (peak 2**bits_stored - 1) on all frames;
2. encode and decode MB/s of raw data at that point: one frame at a time on one thread, and
   frames spread over ``--threads`` threads (wall time); fastest of ``--repeat`` passes;
3. a sweep over ``--sweep`` bpp gives the rate-distortion curve for BD-rate (cubic, VCEG-M33).

It prints absolute figures, then medcodec's ratios to libjpeg-turbo 12-bit, HTJ2K and JPEG 2000
(speed ratios > 1: medcodec faster; ΔPSNR > 0: medcodec better at ~``--bpp``; BD-rate < 0:
medcodec needs fewer bits for the same PSNR). BLAS is limited to one thread so that "one thread"
means one thread for every codec.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy is imported: "one thread" must mean one thread

import argparse
import datetime as dt
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _markdown import put_section  # this folder (benchmarks/) is on sys.path when run as a script

from medcodec.errors import CodecError
from medcodec.evaluate import metrics as M
from medcodec.evaluate.bjontegaard import bd_rate
from medcodec.evaluate.inputs import LoadedSeries, load_series
from medcodec.evaluate.peers import ADAPTERS, DEFAULT_CODECS, OPT_IN, BaseAdapter, get_adapter, library_versions
from medcodec.evaluate.ratecontrol import KnobSearch, calibration_indices
from medcodec.evaluate.runner import evaluate_point
from medcodec.evaluate.timing import (
    cpu_model,
    time_each,
    time_parallel,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
REFERENCES = ("jpeg12", "htj2k", "jpeg2000")
BEGIN, END = "<!-- bench_run:begin -->", "<!-- bench_run:end -->"
SUBJECTS = ("medcodec", "medcodec-arith", "medcodec-jpeg")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def find_series(data: Path, frames: int, args_min_size: int = 128) -> list[tuple[str, LoadedSeries]]:
    """The series to benchmark: ``data`` itself if it holds files, else each subfolder."""
    if not data.exists():
        raise SystemExit(f"benchmark data not found: {data} (pass --data DIR)")
    has_dicom = any(_looks_like_dicom(p) for p in data.iterdir())
    candidates = [data] if has_dicom else sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith("."))
    out = []
    for folder in candidates:
        try:
            s = load_series(folder, max_frames=frames)
        except CodecError as exc:
            _log(f"skip {folder.name}: {exc}")
            continue
        if min(s.pixels.shape[1:]) < args_min_size:
            _log(f"skip {folder.name}: frames of {s.pixels.shape[1]}x{s.pixels.shape[2]} are below --min-size")
            continue
        distinct = len({f.tobytes() for f in s.pixels})
        if distinct < min(4, s.total_frames) or s.total_frames < 4:
            _log(f"skip {folder.name}: longest series has {distinct} distinct frame(s), not a series")
            continue
        out.append((folder.name, s))
    return out


def _looks_like_dicom(path: Path) -> bool:
    """A file named *.dcm or with the DICM magic at byte 128 (README files do not count)."""
    if not path.is_file() or path.name.startswith("."):
        return False
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with path.open("rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def bench_codec(ad: BaseAdapter, s: LoadedSeries, args: argparse.Namespace) -> dict[str, Any]:
    """One codec on one series: matched-rate point, speeds, sweep for BD-rate."""
    px, spec = s.pixels, s.spec
    ad.for_series(px, spec)  # as evaluate does: medcodec codes with the series' span (its writers' steps)
    cal = px[calibration_indices(px.shape[0], 4)]
    value: float | None = None
    sweep: list[dict[str, float]] = []
    if ad.knob is not None:

        def bpp_of(v: float) -> float:
            return 8.0 * sum(len(ad.encode(f, spec, target=v)) for f in cal) / cal.size

        search = KnobSearch(bpp_of, ad.knob)
        for rate in args.sweep:
            p, _ = evaluate_point(ad, px, spec, search.find(rate).value, with_ssim=False)
            sweep.append({"bpp": p["bpp"], "psnr_db": p["psnr_db"]})
        value = search.find(args.bpp).value
    # the speed point: one thread, frame by frame (best of --repeat), then all threads
    enc1 = time_each(lambda f: ad.encode(f, spec, target=value), list(px), repeat=args.repeat)
    streams: list[bytes] = enc1.results
    dec1 = time_each(lambda b: ad.decode(b, spec, shape=px.shape[1:]), streams, repeat=args.repeat)
    encn = time_parallel(lambda f: ad.encode(f, spec, target=value), list(px), threads=args.threads, repeat=args.repeat)
    decn = time_parallel(lambda b: ad.decode(b, spec, shape=px.shape[1:]), streams, threads=args.threads,
                         repeat=args.repeat)  # fmt: skip
    decoded = np.stack(dec1.results)
    raw = M.raw_size(px.size, spec.bits_stored)
    n_bytes = sum(map(len, streams))
    return {
        "codec": ad.name,
        "label": ad.label,
        "version": ad.version,
        "knob": ad.knob.name if ad.knob else "lossless",
        "knob_value": value,
        "bpp": M.bits_per_pixel(n_bytes, px.size),
        "ratio": M.compression_ratio(n_bytes, px.size, spec.bits_stored),
        "psnr_db": M.psnr(px, decoded, bits_stored=spec.bits_stored),
        "encode_mb_s_1t": M.mb_per_s(raw, enc1.seconds),
        "decode_mb_s_1t": M.mb_per_s(raw, dec1.seconds),
        "encode_mb_s_nt": M.mb_per_s(raw, encn.seconds),
        "decode_mb_s_nt": M.mb_per_s(raw, decn.seconds),
        "sweep": sweep,
    }


def psnr_at(sweep: list[dict[str, float]], bpp: float) -> float | None:
    """PSNR at ``bpp``, linear in log(bpp) between sweep points; None outside them."""
    pts = sorted((p["bpp"], p["psnr_db"]) for p in sweep if math.isfinite(p["psnr_db"]))
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= bpp <= x1 and x1 > x0:
            t = (math.log(bpp) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return y0 + t * (y1 - y0)
    return None


def bd(ref: list[dict[str, float]], test: list[dict[str, float]]) -> float | None:
    try:
        return bd_rate([p["bpp"] for p in ref], [p["psnr_db"] for p in ref],
                       [p["bpp"] for p in test], [p["psnr_db"] for p in test])  # fmt: skip
    except CodecError:
        return None


def ratios(rows: dict[str, dict[str, Any]], bpp: float) -> list[dict[str, Any]]:
    out = []
    for subject in (s for s in SUBJECTS if s in rows):
        a = rows[subject]
        for ref in (r for r in REFERENCES if r in rows):
            b = rows[ref]
            pa, pb = psnr_at(a["sweep"], bpp), psnr_at(b["sweep"], bpp)
            out.append({
                "subject": subject,
                "reference": ref,
                **{k: a[k] / b[k] for k in ("encode_mb_s_1t", "decode_mb_s_1t", "encode_mb_s_nt", "decode_mb_s_nt")},
                "delta_psnr_db": None if pa is None or pb is None else pa - pb,
                "bd_rate_pct": bd(b["sweep"], a["sweep"]),
            })  # fmt: skip
    return out


def _f(v: Any, fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def format_series(name: str, s: LoadedSeries, rows: dict[str, dict[str, Any]], rat: list[dict[str, Any]],
                  skipped: dict[str, str], args: argparse.Namespace) -> str:  # fmt: skip
    i = s.info()
    lines = [
        f"### {name}: {i['modality']} {i['bits_stored']}-bit {'signed' if i['signed'] else 'unsigned'}, "
        f"{i['frames_evaluated']} of {i['frames_in_series']} frames of {i['rows']}x{i['cols']}",
        "",
        f"Absolute figures at ~{args.bpp:g} bpp (zlib: lossless). MB/s of raw data (2 bytes/pixel for 9-16-bit).",
        "",
        "| codec | bpp | PSNR dB | enc MB/s 1 thread | dec MB/s 1 thread | "
        f"enc MB/s {args.threads} threads | dec MB/s {args.threads} threads |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows.values():
        lines.append(
            f"| {r['label']} | {r['bpp']:.3f} | {_f(r['psnr_db'], '.2f')} | {r['encode_mb_s_1t']:.0f} | "
            f"{r['decode_mb_s_1t']:.0f} | {r['encode_mb_s_nt']:.0f} | {r['decode_mb_s_nt']:.0f} |"
        )
    for msg in skipped.values():
        lines.append(f"\n{msg}")
    if rat:
        lines += [
            "",
            f"Ratios (subject / reference; speed > 1 = subject faster; ΔPSNR at {args.bpp:g} bpp > 0 = subject "
            "better; BD-rate < 0 = subject needs fewer bits at equal PSNR):",
            "",
            "| subject | vs | enc 1T | dec 1T | enc NT | dec NT | ΔPSNR dB | BD-rate |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rat:
            lines.append(
                f"| {r['subject']} | {r['reference']} | {r['encode_mb_s_1t']:.2f}x | {r['decode_mb_s_1t']:.2f}x | "
                f"{r['encode_mb_s_nt']:.2f}x | {r['decode_mb_s_nt']:.2f}x | {_f(r['delta_psnr_db'], '+.2f')} | "
                f"{_f(r['bd_rate_pct'], '+.1f')} % |"
            )
    return "\n".join(lines)


def summary(all_ratios: list[dict[str, Any]]) -> str:
    """Geometric mean of the speed ratios and mean BD-rate over series, per subject and reference."""
    keys = ("encode_mb_s_1t", "decode_mb_s_1t", "encode_mb_s_nt", "decode_mb_s_nt")
    lines = [
        "| subject | vs | enc 1T | dec 1T | enc NT | dec NT | mean ΔPSNR dB | mean BD-rate | series |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pairs = dict.fromkeys((r["subject"], r["reference"]) for r in all_ratios)
    for subject, ref in pairs:
        rs = [r for r in all_ratios if r["subject"] == subject and r["reference"] == ref]
        g = {k: math.exp(np.mean([math.log(r[k]) for r in rs])) for k in keys}
        dp = [r["delta_psnr_db"] for r in rs if r["delta_psnr_db"] is not None]
        bdr = [r["bd_rate_pct"] for r in rs if r["bd_rate_pct"] is not None]
        lines.append(
            f"| {subject} | {ref} | " + " | ".join(f"{g[k]:.2f}x" for k in keys)
            + f" | {_f(float(np.mean(dp)) if dp else None, '+.2f')} | {_f(float(np.mean(bdr)) if bdr else None, '+.1f')} %"
            f" | {len(rs)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"DICOM folder (default {DEFAULT_DATA})")
    ap.add_argument("--frames", type=int, default=12, help="evenly spaced frames per series (default 12)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for the all-cores run")
    ap.add_argument("--bpp", type=float, default=1.0, help="matched rate for speed and ΔPSNR (default 1.0)")
    ap.add_argument("--sweep", type=lambda t: [float(v) for v in t.split(",")], default=[0.5, 0.75, 1.0, 1.5, 2.0],
                    help="bpp points of the BD-rate curve (default 0.5,0.75,1,1.5,2)")
    ap.add_argument("--codecs", default=",".join(DEFAULT_CODECS),
                    help=f"comma-separated, of {','.join(ADAPTERS)} (default: all but {','.join(OPT_IN)}: name it to add it)")
    ap.add_argument("--min-size", type=int, default=128, help="skip series with smaller frames (default 128)")
    ap.add_argument("--repeat", type=int, default=3, help="timing runs, fastest kept (default 3)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    ap.add_argument("--markdown", type=Path, help="also write the results as Markdown (e.g. docs/benchmarks.md)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    adapters = [get_adapter(n.strip()) for n in args.codecs.split(",") if n.strip()]
    series = find_series(args.data, args.frames, args.min_size)
    if not series:
        raise SystemExit(f"no series found under {args.data}")
    sections, results, all_ratios = [], [], []
    for name, s in series:
        _log(f"{name}: {s.pixels.shape[0]} frames {s.pixels.shape[1]}x{s.pixels.shape[2]}, {s.spec.bits_stored}-bit")
        rows: dict[str, dict[str, Any]] = {}
        skipped: dict[str, str] = {}
        for ad in adapters:
            why = ad.why_unavailable if not ad.is_available() else ad.supports(s.spec)
            if why:
                skipped[ad.name] = why
                continue
            t = time.perf_counter()
            try:
                rows[ad.name] = bench_codec(ad, s, args)
            except Exception as exc:  # report and go on with the others
                skipped[ad.name] = f"{ad.name} failed: {type(exc).__name__}: {exc}"
                continue
            _log(f"  {ad.name:14s} {time.perf_counter() - t:6.1f} s")
        rat = ratios(rows, args.bpp)
        all_ratios += rat
        text = format_series(name, s, rows, rat, skipped, args)
        print(text + "\n", flush=True)
        sections.append(text)
        results.append({"series": name, "input": s.info(), "codecs": rows, "ratios": rat, "skipped": skipped})
    summ = summary(all_ratios) if all_ratios else "(no medcodec results)"
    print("### Summary over series (geometric mean of speed ratios)\n\n" + summ)
    elapsed = time.perf_counter() - t0
    env = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "threads": args.threads,
        "frames_per_series": args.frames,
        "bpp": args.bpp,
        "sweep": args.sweep,
        "repeat": args.repeat,
        "elapsed_s": round(elapsed, 1),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "libraries": library_versions(),
    }
    print(f"\n({elapsed:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "series": results}, indent=1, default=str))
    if args.markdown:
        cpu = cpu_model()
        libs = ", ".join(f"{k} {v}" for k, v in env["libraries"].items())
        md = [
            "Last run of `python benchmarks/run.py` (`make bench`); rerun it to refresh this page with "
            "`--markdown docs/benchmarks.md`. Speed is MB/s of raw data (1 MB = 10^6 bytes; 2 bytes per pixel "
            "for 9-16-bit data); PSNR has peak 2^bits_stored - 1. All codecs run in the same process on the same "
            "frames; BLAS limited to one thread.",
            "",
            f"- Date: {env['date']}",
            f"- Machine: {cpu} ({env['cpu_count']} logical CPUs), {env['platform']}",
            f"- Settings: {args.frames} frames per series, ~{args.bpp:g} bpp, sweep {args.sweep} bpp, "
            f"{args.threads} threads for the all-cores columns, best of {args.repeat}; run took {elapsed:.0f} s; "
            f"load average at the end {env['load_average_at_end']} (other work on the machine lowers the figures)",
            f"- Libraries: {libs}",
            "",
            "## Summary",
            "",
            summ,
            "",
            "## Per series",
            "",
            "\n\n".join(sections),
            "",
        ]
        # only this run's section is replaced: the other benchmarks' sections and the notes around them stay
        put_section(args.markdown, BEGIN, END, "\n".join(md))
    return 0




if __name__ == "__main__":
    sys.exit(main())
