#!/usr/bin/env python3
"""Issue 12: would a sample adaptive offset (HEVC's SAO, H.265 §8.7.3) after the ``.mdc`` default's
filters pay? Measurement only, no format change.

Usage (from the repository root; a minute or two per series)::

    nice -n 10 .venv/bin/python benchmarks/explore_sao.py [--frames 4] [--ctb 64] [--unseen]

The default's frames (``medcodec.encode(f, quality=q)``, decoded by ``medcodec.decode``: after its
deblocking and restoration filter) get, per CTB of ``--ctb`` x ``--ctb`` samples, the choice an
encoder of such a format would make, by ``J = delta SSE + lambda x side bits``:

* off;
* edge offset along one of 4 directions (0, 90, 135, 45 degrees): each sample compared with its
  two neighbours on that line falls in one of HEVC's 4 categories (local minimum, concave corner,
  convex corner, local maximum) or none; one offset per category, >= 0 for the first two and <= 0
  for the last two (the sign implied, as in HEVC), the mean error of the category rounded;
* band offset: the frame's value range (min..max of the decoded frame, signalled) in 32 bands, 4
  consecutive bands with a signed offset each;
* merge with the left or the upper CTB's parameters (1 bit each, as HEVC's merge flags).

Side bits: a flag per frame, per CTB the merge flags, the type (off 1 bit, EO 2 + 2 for the
direction, BO 2 + 5 for the first band), the offsets as exp-Golomb order 0 of the magnitude (BO:
plus a sign bit when non-zero). An adaptive coder would spend less: the estimate is pessimistic.
lambda per quality: the slope of the default's own curve (central differences of SSE against
bits over the series' frames), i.e. what the encoder trades at that point.

Why it could pay: the default's filters are a deblocking filter on block edges and one Wiener
class per frame; neither corrects the small systematic overshoot of ringing next to edges (skull
and air in head CT, organ boundaries in MR), which edge offsets target, nor a bias per
intensity band, which band offsets do. Output: BD-rate (cubic, PSNR peak 2^bits - 1) of the SAO
frames against the same frames without it, per series, and the share of CTBs per choice.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import medcodec
from medcodec.evaluate.bjontegaard import bd_rate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_mdc2 as B  # noqa: E402

DIRS = ((0, 1), (1, 0), (1, 1), (1, -1))  # neighbour offset (dy, dx): 0, 90, 135, 45 degrees
BANDS = 32


def eg0_bits(v: np.ndarray) -> np.ndarray:
    """Bits of exp-Golomb order 0 of |v|."""
    return 1 + 2 * np.floor(np.log2(np.abs(v) + 1.0))


def eo_categories(rec: np.ndarray, d: tuple[int, int]) -> np.ndarray:
    """HEVC edge-offset category per sample (0: none, 1..4), border samples 0."""
    dy, dx = d
    h, w = rec.shape
    c = np.zeros((h, w), np.int8)
    r = rec.astype(np.int64)
    ys, ye = 1, h - 1
    xs, xe = 1, w - 1
    mid = r[ys:ye, xs:xe]
    a = r[ys - dy : ye - dy, xs - dx : xe - dx]
    b = r[ys + dy : ye + dy, xs + dx : xe + dx]
    s = np.sign(mid - a) + np.sign(mid - b)  # -2 local min ... +2 local max
    cat = np.zeros(mid.shape, np.int8)
    cat[s == -2] = 1
    cat[s == -1] = 2
    cat[s == 1] = 3
    cat[s == 2] = 4
    c[ys:ye, xs:xe] = cat
    return c


def ctb_stats(err: np.ndarray, labels: np.ndarray, ctb_id: np.ndarray, nctb: int, nlab: int):
    """Per CTB and label: count and sum of the error."""
    key = ctb_id * nlab + labels.astype(np.int64)
    n = np.bincount(key.ravel(), minlength=nctb * nlab).reshape(nctb, nlab)
    s = np.bincount(key.ravel(), weights=err.ravel(), minlength=nctb * nlab).reshape(nctb, nlab)
    return n, s


def gain(n: np.ndarray, s: np.ndarray, o: np.ndarray) -> np.ndarray:
    """delta SSE of adding offset o to samples whose error (orig - rec) sums to s over n samples."""
    return n * o * o - 2 * o * s


def sao_frame(orig: np.ndarray, rec: np.ndarray, lam: float, ctb: int, lo_val: int, hi_val: int):
    """Choose and apply SAO; returns (filtered frame, side bits, counts of choices)."""
    h, w = rec.shape
    err = orig.astype(np.float64) - rec
    cy, cx = (h + ctb - 1) // ctb, (w + ctb - 1) // ctb
    nctb = cy * cx
    yy, xx = np.indices((h, w))
    ctb_id = (yy // ctb) * cx + (xx // ctb)
    # edge offsets: per direction, per CTB, categories 1..4
    eo = []
    for d in DIRS:
        cat = eo_categories(rec, d)
        n, s = ctb_stats(err, cat, ctb_id, nctb, 5)
        o = np.where(n > 0, np.round(s / np.maximum(n, 1)), 0.0)
        o[:, 1:3] = np.maximum(o[:, 1:3], 0)
        o[:, 3:5] = np.minimum(o[:, 3:5], 0)
        o[:, 0] = 0
        eo.append((cat, n, s, o))
    # band offsets over the decoded frame's range
    lo, hi = float(rec.min()), float(rec.max())
    width = max((hi - lo + 1) / BANDS, 1e-9)
    band = np.clip(((rec - lo) / width).astype(np.int64), 0, BANDS - 1)
    bn, bs = ctb_stats(err, band, ctb_id, nctb, BANDS)
    bo = np.where(bn > 0, np.round(bs / np.maximum(bn, 1)), 0.0)
    bg = -gain(bn, bs, bo)  # SSE saved per band (>= 0 for the rounded mean)
    win = np.stack([bg[:, k : k + 4].sum(1) for k in range(BANDS - 3)], 1)
    bstart = win.argmax(1)

    def cost_eo(i: int, di: int, offs: np.ndarray) -> tuple[float, float]:
        _, n, s, _ = eo[di]
        return float(gain(n[i, 1:], s[i, 1:], offs[1:]).sum()), float(eg0_bits(offs[1:]).sum())

    def cost_bo(i: int, start: int, offs: np.ndarray) -> tuple[float, float]:
        sl = slice(start, start + 4)
        return float(gain(bn[i, sl], bs[i, sl], offs).sum()), float((eg0_bits(offs) + (offs != 0)).sum())

    params: list[tuple] = []
    bits = 1.0  # the frame's flag
    counts = {"off": 0, "eo": 0, "bo": 0, "merge": 0}
    for i in range(nctb):
        r, c = divmod(i, cx)
        cands = [(0.0, 1.0, ("off",))]
        for di in range(4):
            offs = eo[di][3][i]
            dsse, ob = cost_eo(i, di, offs)
            cands.append((dsse, 1 + 2 + 2 + ob, ("eo", di, offs.copy())))
        st = int(bstart[i])
        offs = bo[i, st : st + 4]
        dsse, ob = cost_bo(i, st, offs)
        cands.append((dsse, 1 + 2 + 5 + ob, ("bo", st, offs.copy())))
        merge_bits = (1 if c > 0 else 0) + (1 if r > 0 else 0)
        best = None
        for dsse, b, p in cands:
            jv = dsse + lam * (b + merge_bits)
            if best is None or jv < best[0]:
                best = (jv, b + merge_bits, p, "new")
        for k, nb in ((i - 1, 1) if c > 0 else (None, 0), (i - cx, 2) if r > 0 else (None, 0)):
            if k is None:
                continue
            p = params[k]
            if p[0] == "off":
                dsse = 0.0
            elif p[0] == "eo":
                dsse = cost_eo(i, p[1], p[2])[0]
            else:
                dsse = cost_bo(i, p[1], p[2])[0]
            jv = dsse + lam * nb
            if jv < best[0]:
                best = (jv, nb, p, "merge")
        assert best is not None
        params.append(best[2])
        bits += best[1]
        counts["merge" if best[3] == "merge" else best[2][0]] += 1
    out = rec.astype(np.float64).copy()
    for i, p in enumerate(params):
        if p[0] == "off":
            continue
        r, c = divmod(i, cx)
        sl = (slice(r * ctb, (r + 1) * ctb), slice(c * ctb, (c + 1) * ctb))
        if p[0] == "eo":
            lab = eo[p[1]][0][sl]
            table = np.asarray(p[2], np.float64)
            out[sl] += table[lab]
        else:
            lab = band[sl] - p[1]
            table = np.zeros(BANDS + 8)
            table[:4] = p[2]
            out[sl] += np.where((lab >= 0) & (lab < 4), table[np.clip(lab, 0, BANDS + 7)], 0.0)
    np.clip(out, lo_val, hi_val, out=out)
    return out, bits, counts


def run(name: str, frames: np.ndarray, bits: int, signed: bool, ctb: int, qualities) -> dict:
    peak = (1 << bits) - 1
    lo_val, hi_val = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, peak)
    recs: dict[int, list] = {}
    rate_bits, sse = [], []
    t0 = time.time()
    for q in qualities:
        nb, e = 0, 0.0
        recs[q] = []
        for f in frames:
            b = medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1)
            d = np.asarray(medcodec.decode(b, jobs=1)).reshape(f.shape)
            recs[q].append((len(b) * 8, d))
            nb += len(b) * 8
            e += float(np.sum((d.astype(np.float64) - f) ** 2))
        rate_bits.append(nb)
        sse.append(e)
    rate_bits_a, sse_a = np.asarray(rate_bits, float), np.asarray(sse, float)
    anchor, filt = [], []
    counts_all = {"off": 0, "eo": 0, "bo": 0, "merge": 0}
    for i, q in enumerate(qualities):
        j0, j1 = max(i - 1, 0), min(i + 1, len(qualities) - 1)
        lam = max(-(sse_a[j1] - sse_a[j0]) / max(rate_bits_a[j1] - rate_bits_a[j0], 1.0), 0.0)
        nb, nb_f, e, e_f = 0, 0.0, 0.0, 0.0
        for f, (fb, d) in zip(frames, recs[q]):
            out, side, counts = sao_frame(f, d, lam, ctb, lo_val, hi_val)
            for k in counts:
                counts_all[k] += counts[k]
            nb += fb
            nb_f += fb + side
            e += float(np.sum((d.astype(np.float64) - f) ** 2))
            e_f += float(np.sum((out - f) ** 2))
        n = frames.size
        anchor.append((nb / n, 10 * np.log10(peak**2 * n / e)))
        filt.append((nb_f / n, 10 * np.log10(peak**2 * n / e_f)))
        print(f"  {name:40s} q{q:3d} {nb / n:6.3f} bpp {anchor[-1][1]:6.2f} dB -> {nb_f / n:6.3f} bpp "
              f"{filt[-1][1]:6.2f} dB (side {100 * (nb_f - nb) / nb:.2f} %)", flush=True)  # fmt: skip
    rng = [(r, p) for r, p in anchor if 0.25 <= r <= 3.0]
    frng = [(r, p) for r, p in filt if 0.25 <= r <= 3.0]
    bd = bd_rate([r for r, _ in rng], [p for _, p in rng], [r for r, _ in frng], [p for _, p in frng])
    total = sum(counts_all.values())
    share = {k: round(100 * v / max(total, 1), 1) for k, v in counts_all.items()}
    print(f"{name}: SAO BD-rate against the default alone {bd:+.2f} %, CTB choices % {share} ({time.time() - t0:.0f} s)",
          flush=True)  # fmt: skip
    return {"bd": bd, "share": share}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=B.DEFAULT_DATA)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--ctb", type=int, default=64)
    ap.add_argument("--unseen", action="store_true", help="pydicom-data's unseen CT / MR instead (check_mdc_unseen)")
    ap.add_argument("--testdata", nargs="*", default=(), help="pydicom-data file names instead")
    args = ap.parse_args(argv)
    unseen = ("693_UNCR.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "J2K_pixelrep_mismatch.dcm")
    names = tuple(args.testdata) or (unseen if args.unseen else ())
    qualities = (25, 35, 45, 55, 65, 72, 80, 87, 93, 97)
    sets = []
    if names:  # check_mdc_unseen's three, or other pydicom-data images
        import pydicom
        from pydicom.data import get_testdata_file

        for name in names:
            ds = pydicom.dcmread(get_testdata_file(name))
            px = ds.pixel_array
            sets.append((name, px[None] if px.ndim == 2 else px, int(ds.BitsStored), bool(ds.PixelRepresentation)))
    else:
        for s in B.SERIES:
            frames, bits, signed = B.load(args.data / s, args.frames)
            sets.append((s, frames, bits, signed))
    results = {name: run(name, frames, bits, signed, args.ctb, qualities) for name, frames, bits, signed in sets}
    print("\nSummary (BD-rate of SAO after the default's filters, against the default alone; < 0: it pays)")
    for name, r in results.items():
        print(f"  {name:40s} {r['bd']:+.2f} %  {r['share']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
