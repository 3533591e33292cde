#!/usr/bin/env python3
"""Where `.mdc` 2.0 (``entropy="arith"``) loses to JPEG 2000: the measurements behind the
"Format 2.0" diagnosis in docs/design-notes.md.

Usage (from the repository root)::

    python benchmarks/diag_mdc2.py                  # the bench_mdc2 series, 6 slices each
    python benchmarks/diag_mdc2.py --extra-mr       # plus other MR images of the shared data

Per series, slices coded one by one as in ``bench_mdc2.py`` (PSNR peak ``2**bits_stored - 1``):

* the range bits each slice's steps follow (format 2.0 floors them at ``min(bits_stored, 12)``) and
  what coding every slice with the series' steps (``range_bits=`` the largest) changes;
* PSNR-rate points of .mdc 2.0, OpenJPEG, HTJ2K (OpenJPH) and medcodec's standard JPEG, and the
  BD-rate against OpenJPEG over sub-ranges of rates;
* where the bits go at two rates: container and frame side information, DC (the stream's size
  with every AC level zeroed) and AC;
* where the error is at ~0.3 bpp, against OpenJPEG at the same size: background, strong edges,
  smooth tissue; pixels on a block boundary or inside.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from scipy import ndimage  # noqa: E402

import medcodec  # noqa: E402
from medcodec import external  # noqa: E402
from medcodec.codec import levelshift, mdc2, quantize  # noqa: E402
from medcodec.codec.framecoder import FrameCoder  # noqa: E402
from medcodec.codec.mdc import arith_range_bits  # noqa: E402
from medcodec.evaluate.bjontegaard import bd_rate  # noqa: E402
from medcodec.spec import PixelSpec  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mdc2 import DEFAULT_DATA, SERIES, load, sweep  # noqa: E402

QUALITIES = tuple(range(10, 101, 6)) + (100,)
SUBRANGES = ((0.2, 0.7), (0.5, 1.5), (1.2, 3.5), (0.2, 3.5))


def codecs(bits: int, signed: bool) -> dict:
    spec = PixelSpec(bits_stored=bits, signed=signed)

    def unsigned_dec(fn):
        return lambda b: external.from_unsigned(np.asarray(fn(b)), spec, external.unsigned_offset(spec))

    def mdc(f, q, **kw):
        return medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1, entropy="arith", intra=False, **kw)

    out = {
        "mdc v2 arith fast": (mdc, lambda b: medcodec.decode(b, jobs=1), QUALITIES),
        "jpeg2000 (OpenJPEG)": (
            lambda f, p: external.jpeg2k_encode(external.to_unsigned(f, spec)[0], bits_stored=bits, psnr_db=p),
            unsigned_dec(external.jpeg2k_decode), None,
        ),
        "htj2k (OpenJPH)": (
            lambda f, s: external.htj2k_encode(external.to_unsigned(f, spec)[0], step=s),
            unsigned_dec(external.htj2k_decode), tuple(2.0 ** -e for e in np.arange(7.0, 16.5, 0.75)),
        ),
        "medcodec jpeg (best)": (
            lambda f, q: medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, format="jpeg", jobs=1)
            if bits <= 12 else None,
            lambda b: medcodec.decode(b, jobs=1), QUALITIES,
        ),
    }  # fmt: skip
    return out


def bd(anchor, test, lo, hi) -> str:
    a = [(b, p) for _, b, p in anchor if lo <= b <= hi and np.isfinite(p)]
    t = [(b, p) for _, b, p in test if lo <= b <= hi and np.isfinite(p)]
    try:
        return f"{bd_rate([b for b, _ in a], [p for _, p in a], [b for b, _ in t], [p for _, p in t]):+6.1f} %"
    except medcodec.CodecError:
        return "   n/a"


def bits_split(frames: np.ndarray, bits: int, signed: bool, q: float) -> tuple[float, float, float, float]:
    """(bpp, side information, DC, AC) in bits per pixel at quality ``q``."""
    total = side = dc = 0
    for f in frames:
        data = medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1, entropy="arith", intra=False)
        rb = arith_range_bits(levelshift.content_range_bits(f, int(f.min()), int(f.max()), bits), bits, f)
        coder = FrameCoder.for_table(quantize.quant_table(q, rb), bits, signed)
        levels = coder.levels(f)
        coded = len(mdc2.encode_levels(levels, -(-f.shape[1] // 8), mdc2.arith_coder_id("arith")))
        only_dc = levels.copy()
        only_dc[:, 1:] = 0
        total += len(data)
        side += len(data) - coded
        dc += len(mdc2.encode_levels(only_dc, -(-f.shape[1] // 8), mdc2.arith_coder_id("arith")))
    px = frames.size / 8
    return total / px, side / px, dc / px, (total - side - dc) / px


def error_regions(frames: np.ndarray, bits: int, signed: bool, q: float) -> None:
    spec = PixelSpec(bits_stored=bits, signed=signed)
    blobs = [medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1, entropy="arith", intra=False) for f in frames]
    dm = np.array([medcodec.decode(b, jobs=1) for b in blobs], dtype=np.float64)
    bpp = sum(map(len, blobs)) * 8 / frames.size

    def j2k_at(p):
        bs = [external.jpeg2k_encode(external.to_unsigned(f, spec)[0], bits_stored=bits, psnr_db=p) for f in frames]
        return sum(map(len, bs)) * 8 / frames.size, bs

    lo, hi = 20.0, 120.0
    for _ in range(14):  # the OpenJPEG PSNR target whose size matches .mdc's
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if j2k_at(mid)[0] > bpp else (mid, hi)
    rate, bs = j2k_at(lo)
    dj = np.array([external.from_unsigned(external.jpeg2k_decode(b), spec, external.unsigned_offset(spec))
                   for b in bs], dtype=np.float64)  # fmt: skip
    f64 = frames.astype(np.float64)
    em, ej = (dm - f64) ** 2, (dj - f64) ** 2
    peak = (1 << bits) - 1
    print(f"  error at quality {q}: .mdc {bpp:.3f} bpp {10 * np.log10(peak**2 / em.mean()):.2f} dB, "
          f"OpenJPEG {rate:.3f} bpp {10 * np.log10(peak**2 / ej.mean()):.2f} dB")  # fmt: skip
    grad = np.array([np.hypot(ndimage.sobel(f, 0), ndimage.sobel(f, 1)) for f in f64])
    bg = f64 <= np.percentile(f64, 5) + 0.02 * (f64.max() - f64.min())
    edge = (grad > np.percentile(grad[~bg], 90)) & ~bg
    smooth = ~bg & ~edge
    yy, xx = np.indices(frames.shape[1:])
    bnd = np.broadcast_to((xx % 8 == 0) | (xx % 8 == 7) | (yy % 8 == 0) | (yy % 8 == 7), frames.shape)
    print(f"    {'region':22s} {'pixels':>7s} {'.mdc SE':>8s} {'J2K SE':>7s} {'MSE .mdc/J2K':>12s}")
    for label, m in (("background", bg), ("edges (top 10% grad)", edge), ("smooth", smooth),
                     ("block boundary", bnd), ("block interior", ~bnd)):  # fmt: skip
        print(f"    {label:22s} {100 * m.mean():6.1f}% {100 * em[m].sum() / em.sum():7.1f}% "
              f"{100 * ej[m].sum() / ej.sum():6.1f}% {em[m].mean() / max(ej[m].mean(), 1e-12):12.2f}")  # fmt: skip


def series_report(name: str, frames: np.ndarray, bits: int, signed: bool) -> None:
    print(f"\n## {name}: {frames.shape} {bits}-bit {'signed' if signed else 'unsigned'}", flush=True)
    own = [levelshift.content_range_bits(f, int(f.min()), int(f.max()), bits) for f in frames]
    steps_bits = [arith_range_bits(r, bits, f) for r, f in zip(own, frames)]
    print(f"  range bits per slice: content {own}, format 2.0 steps {steps_bits}")
    curves: dict[str, list] = {}
    for label, (enc, dec, knobs) in codecs(bits, signed).items():
        if enc(frames[0], (knobs or (50,))[0]) is None:
            continue
        if knobs is None:
            ps = [p for _, b, p in curves["mdc v2 arith fast"] if 0.15 <= b <= 4]
            knobs = tuple(np.linspace(min(ps) - 2, max(ps) + 2, 14).round(1))
        curves[label] = sweep(frames, bits, enc, dec, knobs)
        print(f"  {label:22s} " + " ".join(f"{b:.2f}/{p:.1f}" for _, b, p in curves[label]), flush=True)
    series_rb = max(own)
    curves["mdc v2, range_bits=series"] = sweep(
        frames, bits,
        lambda f, q: medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1, entropy="arith", intra=False,
                                     range_bits=series_rb),
        lambda b: medcodec.decode(b, jobs=1), QUALITIES,
    )  # fmt: skip
    anchor = curves["jpeg2000 (OpenJPEG)"]
    print("  BD-rate vs OpenJPEG by rate range (bpp): " + "  ".join(f"{lo}-{hi}" for lo, hi in SUBRANGES))
    for label, pts in curves.items():
        print(f"    {label:28s} " + "  ".join(bd(anchor, pts, lo, hi) for lo, hi in SUBRANGES), flush=True)
    for q in (35, 70):
        bpp, side, dc, ac = bits_split(frames, bits, signed, q)
        print(f"  bits at quality {q}: {bpp:.3f} bpp = side info {100 * side / bpp:.1f}% + DC {100 * dc / bpp:.1f}% "
              f"+ AC {100 * ac / bpp:.1f}%")  # fmt: skip
    error_regions(frames, bits, signed, 40)


def extra_mr(data: Path) -> list[tuple[str, np.ndarray, int, bool]]:
    out = []
    ts = data / "transfer_syntaxes_mr"
    singles = data / "singles"
    for path in [*sorted(ts.glob("*.dcm"))[:1], singles / "mr_MR2_1024x1024_12bit_uncompressed.dcm",
                 singles / "mr_enhanced_multiframe_10f_64x64_rle.dcm"]:  # fmt: skip
        if path.exists():
            ds = pydicom.dcmread(path)
            px = ds.pixel_array
            px = px.astype(px.dtype.newbyteorder("="))
            out.append((path.name, px if px.ndim == 3 else px[None], int(ds.BitsStored), bool(ds.PixelRepresentation)))
    try:
        from pydicom.data import get_testdata_file

        ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
        px = ds.pixel_array
        out.append(("pydicom MR_small", px.astype(px.dtype.newbyteorder("="))[None], int(ds.BitsStored),
                    bool(ds.PixelRepresentation)))  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - optional extra data
        print(f"(pydicom MR_small unavailable: {exc})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--series", nargs="*", default=list(SERIES))
    ap.add_argument("--extra-mr", action="store_true")
    args = ap.parse_args(argv)
    for name in args.series:
        series_report(name, *load(args.data / name, args.frames))
    if args.extra_mr:
        for name, frames, bits, signed in extra_mr(args.data):
            series_report(name, frames, bits, signed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
