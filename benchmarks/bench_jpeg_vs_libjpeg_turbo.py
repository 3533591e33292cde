"""Standard JPEG: medcodec's default ``format="jpeg"`` against libjpeg-turbo 12-bit, all issue-11 targets.

Both encoders run in this process on the same images. For each image set and each target rate
(0.4 to 2.5 bpp) one quality is searched for the whole set (libjpeg-turbo: integer ``level`` of
``imagecodecs.jpeg8_encode(..., bitspersample=12, optimize=True)``, i.e. optimised Huffman
tables; medcodec: ``medcodec.codec.jpeg.encode_jpeg(..., bits_stored=12, quality=q)`` with the
default settings), so each curve point is (total bits / total pixels, PSNR of the pooled squared
error with peak 4095). Each stream is decoded by its own library. Printed per set, as ratios
measured in the same run:

* BD-rate (VCEG-M33 cubic; PCHIP too) of medcodec against libjpeg-turbo, target <= -20 %;
* texture (CT sets; :func:`medcodec.evaluate.metrics.texture_retention`: soft-tissue 8x8 blocks,
  -150..250 HU, std >= 8 HU) at 1 bpp (target: <= 1 % flattened, median retention >= 0.95) and at
  0.6 bpp (target: flattened fraction <= 1.5x libjpeg-turbo's at the same rate; "not measurable"
  when libjpeg-turbo's quality 1 stays above 0.66 bpp, as on a noisy lung-kernel CT);
* encode and decode speed at ~1 bpp, one thread, best of ``--repeat`` passes of each library,
  interleaved, CPU time of the calling thread (both libraries run in it; CPU time is what a shared
  machine distorts least), targets encode >= 1.5x and decode >= 0.8x libjpeg-turbo.

Image sets (12-bit unsigned; stored values mapped into 12 bits when they are not already:
CT as HU + 1024 clipped to 0..4095, others shifted right until they fit):

* ``train:`` sets come from ``../shared/data`` (``$MEDCODEC_DATA``), on which the quantization
  tables were trained (``benchmarks/train_jpeg_tables.py``);
* ``held-out:`` sets are in ``../shared/data`` but were not used for training (the 384x384 MR of
  ``singles/``, another scan than the training set's ``transfer_syntaxes_mr`` slice);
* ``unseen:`` sets come from pydicom-data and are not in the shared data: the tables and the
  quantizer's constants never saw them.

medcodec codes each set as the lossy DICOM writer codes a series: one content range for all its
frames (``range_bits``: the widest frame's) and the table trained for its modality; ``--per-frame``
codes each frame as ``medcodec.encode(arr, format="jpeg")`` does for a caller who passes neither a
range nor a modality: the steps of its ``bits_stored`` (12; until 2026-12-03 each frame's own span)
and the default (CT) table.

``--files PATH...`` replaces the sets with DICOM files of your own (one set each: its first frame;
a file whose Modality is CT counts as CT): the check on images the project has never seen.

Run: ``.venv/bin/python benchmarks/bench_jpeg_vs_libjpeg_turbo.py [--slices N] [--table T] [--effort E] [--per-frame] [--files F...] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom

import medcodec
from medcodec.codec import jpeg as mjpeg
from medcodec.errors import InvalidInputError
from medcodec.evaluate.bjontegaard import bd_rate
from medcodec.evaluate.metrics import texture_block_stats

BPP_RANGE = (0.4, 0.6, 1.0, 1.6, 2.5)
PEAK = 4095


def data_dir() -> Path:
    env = os.environ.get("MEDCODEC_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pydicom_data_dir() -> Path | None:
    try:
        import data_store  # type: ignore[import-not-found]  # the pydicom-data package
    except ImportError:
        return None
    return Path(data_store.__file__).resolve().parent / "data"


def read_frame(path: Path) -> np.ndarray:
    """A DICOM file's (middle) frame as 12-bit unsigned stored values (mapping in the module
    docstring); the middle one, as a multi-frame series often starts with blank frames."""
    ds = pydicom.dcmread(path)
    a = ds.pixel_array
    a = a[a.shape[0] // 2] if a.ndim == 3 else a
    if int(ds.BitsStored) <= 12 and int(ds.PixelRepresentation) == 0:
        return a.astype(np.uint16)
    a = a.astype(np.int64)
    if getattr(ds, "Modality", "") == "CT":
        hu = a * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))
        return np.clip(np.rint(hu) + 1024, 0, 4095).astype(np.uint16)
    a = a - min(0, int(a.min()))
    while a.max() > 4095:
        a >>= 1
    return a.astype(np.uint16)


def series_hints(frames: list[np.ndarray], ct: bool, per_frame: bool) -> dict[str, object]:
    """What the DICOM writer passes for a series: the modality, one content range for all frames."""
    if per_frame:
        return {}
    from medcodec.codec import levelshift

    rbits = max(levelshift.content_range_bits(a, int(a.min()), int(a.max()), 12) for a in frames)
    return {"range_bits": rbits, "modality": "CT" if ct else "MR"}


def image_sets(slices: int) -> list[tuple[str, list[np.ndarray], bool]]:
    """(name, 12-bit frames, is CT) for every set the benchmark runs."""
    d = data_dir()
    sets = []
    for name, ct in (("ct_chest_lungpetctdx_A0001_philips", True), ("ct_head_phantom_philips_ingenuity", True),
                     ("mr_head_ge_signa_t1_ctk", False)):  # fmt: skip
        files = sorted((d / name).glob("*.dcm"))
        if not files:
            sys.exit(f"no DICOM files in {d / name} (set MEDCODEC_DATA)")
        idx = np.linspace(0, len(files) - 1, slices + 2).round().astype(int)[1:-1]
        sets.append((f"train:{name}", [read_frame(files[i]) for i in idx], ct))
    held_out = d / "singles" / "mr_384x384_12bit_unsigned.dcm"
    if held_out.exists():
        sets.append(("held-out:mr_384x384_12bit_unsigned", [read_frame(held_out)], False))
    pd = pydicom_data_dir()
    if pd is not None:
        for name, ct in (("693_UNCR.dcm", True), ("MR-SIEMENS-DICOM-WithOverlays.dcm", False)):
            if (pd / name).exists():
                sets.append((f"unseen:{name[:-4]}", [read_frame(pd / name)], ct))
    return sets


class Curve:
    """Encode/decode a set of frames at one knob value: pooled rate, PSNR and texture (memoised)."""

    def __init__(self, name: str, frames: list[np.ndarray], encode, decode, *, ct: bool = False):
        self.name, self.frames, self._encode, self._decode, self.ct = name, frames, encode, decode, ct
        self.npix = sum(a.size for a in frames)
        self.cache: dict[float, tuple[float, float]] = {}
        self.texture: dict[float, np.ndarray] = {}

    def point(self, knob: float) -> tuple[float, float]:
        if knob not in self.cache:
            nbytes, se, ret = 0, 0.0, []
            for a in self.frames:
                s = self._encode(a, knob)
                nbytes += len(s)
                dec = self._decode(s).astype(np.float64)
                se += float(np.sum((dec - a) ** 2))
                if self.ct:
                    ret.append(texture_block_stats(a, dec, rescale_intercept=-1024.0))
            mse = se / self.npix
            self.cache[knob] = (nbytes * 8 / self.npix, math.inf if mse == 0 else 10 * math.log10(PEAK**2 / mse))
            if self.ct:
                self.texture[knob] = np.concatenate(ret)
        return self.cache[knob]

    def at_bpp(self, bpp: float, *, integer: bool) -> tuple[float, float, float]:
        """Knob whose pooled rate is closest to ``bpp`` (bisection), with (bpp, PSNR)."""
        lo, hi = 1.0, 100.0
        for _ in range(7 if integer else 10):
            mid = round((lo + hi) / 2) if integer else (lo + hi) / 2
            if mid in (lo, hi):
                break
            if self.point(mid)[0] < bpp:
                lo = mid
            else:
                hi = mid
        best = min((lo, hi), key=lambda k: abs(math.log(self.point(k)[0] / bpp)))
        return (best, *self.point(best))

    def texture_at(self, knob: float) -> tuple[float, float]:
        """(flattened fraction, median retention) of the soft-tissue blocks at ``knob``."""
        r = self.texture[knob]
        return (float(np.mean(r < 0.35)), float(np.median(r))) if r.size else (math.nan, math.nan)


def turbo_encoder(a: np.ndarray, q: float) -> bytes:
    return imagecodecs.jpeg8_encode(a, level=int(q), bitspersample=12, optimize=True)


def turbo_curve(frames: list[np.ndarray]) -> list[tuple[float, float, float]]:
    c = Curve("libjpeg-turbo", frames, turbo_encoder, imagecodecs.jpeg8_decode)
    return [c.at_bpp(b, integer=True) for b in BPP_RANGE]


def cpu_seconds(fn, items, repeat: int) -> float:
    """Best of ``repeat`` passes over ``items``: CPU time of this thread."""
    best = math.inf
    for _ in range(repeat):
        t = time.thread_time()
        for x in items:
            fn(x)
        best = min(best, time.thread_time() - t)
    return best


def speed_ratio(anchor, anchor_items, test, test_items, repeat: int) -> float:
    """Best CPU time of ``anchor`` over ``anchor_items`` / best of ``test`` over ``test_items``: rounds
    of two passes of each (the better counts, so the caches are warm as when a series is coded),
    the two sides interleaved, so that a load that changes during the measurement (a shared
    machine) weighs on both alike."""
    best_a = best_t = math.inf
    for _ in range(repeat):  # each side's timed pass follows an untimed one (warm caches, as in a series)
        best_a = min(best_a, cpu_seconds(anchor, anchor_items, 2))
        best_t = min(best_t, cpu_seconds(test, test_items, 2))
    return best_a / best_t


def bd(anchor: list[tuple[float, float, float]], test: list[tuple[float, float, float]], method: str) -> float:
    """BD-rate of ``test`` against ``anchor`` over their (knob, bpp, PSNR) points; a knob that
    two targets share (libjpeg-turbo's quality 1 cannot go below its own rate) counts once, and a
    lossless point (infinite PSNR: sparse, small-valued images reach it inside the range) is left
    out, as the BD integral cannot use it."""

    def curve(points: list[tuple[float, float, float]]) -> tuple[list[float], list[float]]:
        finite = [p for p in points if math.isfinite(p[2])]
        uniq = sorted({p[0]: p for p in finite}.values(), key=lambda p: p[1])
        return [p[1] for p in uniq], [p[2] for p in uniq]

    (ra, pa), (rt, pt) = curve(anchor), curve(test)
    return bd_rate(ra, pa, rt, pt, method=method)


def bd_or_nan(
    anchor: list[tuple[float, float, float]], test: list[tuple[float, float, float]], method: str, notes: list[str]
) -> float:
    """:func:`bd`, or NaN (the reason appended to ``notes``, printed with the image's block) when the
    curves cannot give one: an image whose small values either coder codes losslessly inside the
    range leaves fewer than four lossy points."""
    try:
        return bd(anchor, test, method)
    except InvalidInputError as e:
        notes.append(f"{method} BD-rate not measurable on this image: {e}")
        return math.nan


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=4, help="slices per series (default 4)")
    ap.add_argument("--table", default=None, help="medcodec quantization table (default: the encoder's default)")
    ap.add_argument("--effort", default="best", choices=("fast", "best"), help="medcodec encoder effort (default best)")
    ap.add_argument("--rdo", default=None, help="level selection overriding --effort (none, threshold, trellis, texture)")
    ap.add_argument("--repeat", type=int, default=5, help="timing passes, best taken (default 5)")
    ap.add_argument("--per-frame", action="store_true", help="no series hints: the default range (bits_stored) and table (CT)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON too")
    ap.add_argument("--files", nargs="+", type=Path, help="DICOM files to measure instead of the built-in sets")
    args = ap.parse_args(argv)
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")

    t0 = time.perf_counter()
    kw = {"effort": args.effort, "rdo": args.rdo, **({"table": args.table} if args.table else {})}
    print(f"medcodec {medcodec.__version__} format='jpeg' {kw} {'no series hints (default range and CT table)' if args.per_frame else 'one range per set, modality table'} vs libjpeg-turbo {imagecodecs.jpeg8_version()} 12-bit "
          f"optimize=True (imagecodecs {imagecodecs.__version__}); PSNR peak {PEAK}; rates {BPP_RANGE} bpp")
    results = []
    sets = image_sets(args.slices) if not args.files else [
        (f"file:{f.name}", [read_frame(f)], str(pydicom.dcmread(f, stop_before_pixels=True).get("Modality", "")) == "CT")
        for f in args.files
    ]  # fmt: skip
    for name, frames, ct in sets:
        hints = series_hints(frames, ct, args.per_frame)

        def encode(a: np.ndarray, q: float, hints: dict[str, object] = hints) -> bytes:
            return mjpeg.encode_jpeg(a, bits_stored=12, quality=q, **hints, **kw)  # what encode(format="jpeg") calls

        ours = Curve("medcodec", frames, encode, mjpeg.decode_jpeg, ct=ct)
        turbo = Curve("libjpeg-turbo", frames, turbo_encoder, imagecodecs.jpeg8_decode, ct=ct)
        notes: list[str] = []
        anchor = [turbo.at_bpp(b, integer=True) for b in BPP_RANGE]
        test = [ours.at_bpp(b, integer=False) for b in BPP_RANGE]
        r = {"set": name, "frames": len(frames), "shape": list(frames[0].shape), "ct": ct,
             "anchor": [dict(zip(("quality", "bpp", "psnr"), p)) for p in anchor],
             "test": [dict(zip(("quality", "bpp", "psnr"), p)) for p in test],
             "bd_rate_cubic_percent": bd_or_nan(anchor, test, "cubic", notes),
             "bd_rate_pchip_percent": bd_or_nan(anchor, test, "pchip", notes)}
        i1, i06 = BPP_RANGE.index(1.0), BPP_RANGE.index(0.6)
        if ct:
            r["texture"] = {
                f"{bpp}bpp": {"medcodec": ours.texture_at(test[i][0]), "libjpeg-turbo": turbo.texture_at(anchor[i][0]),
                              "bpp": (test[i][1], anchor[i][1])}
                for bpp, i in ((1.0, i1), (0.6, i06))
            }  # fmt: skip
        q_ours, q_turbo = test[i1][0], anchor[i1][0]
        s_ours = [encode(a, q_ours) for a in frames]
        s_turbo = [turbo_encoder(a, q_turbo) for a in frames]
        def turbo_at(a: np.ndarray, q: float = q_turbo) -> bytes:
            return turbo_encoder(a, q)

        def ours_at(a: np.ndarray, q: float = q_ours) -> bytes:
            return encode(a, q)

        enc = speed_ratio(turbo_at, frames, ours_at, frames, args.repeat)
        dec = speed_ratio(imagecodecs.jpeg8_decode, s_turbo, mjpeg.decode_jpeg, s_ours, args.repeat)
        raw_mb = sum(a.size for a in frames) * 2 / 1e6
        r["speed"] = {"encode_ratio": enc, "decode_ratio": dec,
                      "turbo_encode_mb_s": raw_mb / cpu_seconds(turbo_at, frames, 1)}  # fmt: skip
        results.append(r)

        print(f"\n{name}: {len(frames)} frame(s) of {frames[0].shape[0]}x{frames[0].shape[1]}")
        print(f"{'target bpp':>10} | {'libjpeg-turbo q':>15} {'bpp':>6} {'PSNR':>6} | {'medcodec q':>10} {'bpp':>6} {'PSNR':>6}")
        for b, (qa, ba, sa), (qt, bt, st) in zip(BPP_RANGE, anchor, test):
            print(f"{b:>10.2f} | {qa:>15.0f} {ba:>6.3f} {sa:>6.2f} | {qt:>10.2f} {bt:>6.3f} {st:>6.2f}")
        bdr = r["bd_rate_cubic_percent"]
        for note in notes:
            print(f"  ({note})")
        ok = "not measurable" if math.isnan(bdr) else verdict(bdr <= -20)
        print(f"  BD-rate vs libjpeg-turbo: {bdr:+.2f} % (cubic), {r['bd_rate_pchip_percent']:+.2f} % (PCHIP); "
              f"target <= -20 %: {ok}")  # fmt: skip
        if ct:
            (f1, m1), (tf1, tm1) = r["texture"]["1.0bpp"]["medcodec"], r["texture"]["1.0bpp"]["libjpeg-turbo"]
            (f6, _), (tf6, _) = r["texture"]["0.6bpp"]["medcodec"], r["texture"]["0.6bpp"]["libjpeg-turbo"]
            print(f"  texture at 1 bpp: {f1 * 100:.2f} % flattened, median retention {m1:.3f} (libjpeg-turbo "
                  f"{tf1 * 100:.2f} %, {tm1:.3f}); target <= 1 % and >= 0.95: {verdict(f1 <= 0.01 and m1 >= 0.95)}")
            lim, tb6 = 1.5 * tf6, r["texture"]["0.6bpp"]["bpp"][1]
            if tb6 > 0.6 * 1.1:  # a noisy image: libjpeg-turbo's quality 1 stays above the rate
                print(f"  texture at 0.6 bpp: {f6 * 100:.2f} % flattened; libjpeg-turbo cannot reach 0.6 bpp (its "
                      f"quality 1 gives {tb6:.2f} bpp, {tf6 * 100:.2f} % flattened): target not measurable")
            else:
                print(f"  texture at 0.6 bpp: {f6 * 100:.2f} % flattened (libjpeg-turbo {tf6 * 100:.2f} %, ratio "
                      f"{(f6 / tf6) if tf6 else math.nan:.2f}x); target <= 1.5x: {verdict(f6 <= lim + 1e-12)}")
        print(f"  speed at ~1 bpp, 1 thread (libjpeg-turbo {r['speed']['turbo_encode_mb_s']:.0f} MB/s): encode "
              f"{enc:.3f}x libjpeg-turbo (target >= 1.5x: {verdict(enc >= 1.5)}), decode {dec:.3f}x "
              f"(target >= 0.8x: {verdict(dec >= 0.8)})")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; load average at the end {os.getloadavg()}")
    if args.json:
        print(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
