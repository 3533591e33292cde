#!/usr/bin/env python3
"""Texture retention at ~1 bpp on the chest CT: does a variant flatten noisy soft tissue?

Usage (from the repository root)::

    python benchmarks/bench_texture.py [--data DIR] [--bpp 1.0]

Two definitions, both printed:

* **issue 11's** (:func:`medcodec.metrics.texture_retention`, what the targets are stated in):
  soft-tissue blocks are the aligned 8x8 blocks of 7 evenly spaced slices whose voxels *all* lie
  in -150..250 HU with a block standard deviation >= 8 HU; retention = decoded block std /
  original block std; *flattened* = retention below 0.35. Targets at 1 bpp: <= 1 % flattened,
  median retention >= 0.95.
* a stricter one kept from before (``loose``): blocks whose *mean* lies in -150..250 HU (edges of
  soft tissue against fat or air count too), flattened below 0.5.

Each variant's quality is bisected to ``--bpp`` over the 7 slices.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pydicom

import medcodec
from medcodec.codec import intra as intra_mod
from medcodec.codec import mdc as mdc_mod
from medcodec.metrics import texture_retention

REPO = Path(__file__).resolve().parent.parent
SERIES = "ct_chest_lungpetctdx_A0001_philips"
VARIANTS = {
    # 2.6 since big26 / q16modes, 2.11 (within-block level contexts) since 2026-12-04, the
    # "near-flat" table (quantize.MDC_DEFAULT_TABLE) since the twentieth session, 2.12 (trained starts)
    # since the twenty-first
    ".mdc default (2.12 intra fast, RD levels, tx choice, 16x16 blocks, near-flat table)": {},
    ".mdc default with the table of before (medical)": {"table": "medical"},
    ".mdc 2.5 fast (default before big26)": {"intra_attrs": {"BIG_EFFORTS": ()}},  # no 16x16 blocks
    ".mdc 2.5 fast before joint26": {"intra_attrs": {"BIG_EFFORTS": (), "TX_JOINT": {"fast": 0, "best": 0},  # DST for the winner only
                                                     "RD_MODE_SEARCH": {"fast": None, "best": (16, 6)}}},
    ".mdc 2.4 intra fast (default before tx25)": {"intra_attrs": {"TX_EFFORTS": ("best",),
                                                                   "RD_MODE_SEARCH": {"fast": None, "best": (16, 6)}}},
    ".mdc 2.4 intra fast, rounded levels": {"intra_rd": False},  # the default before the RD levels
    ".mdc 2.6 intra best": {"effort": "best"},  # 2.5 from tx25, 2.6 since big26
    ".mdc 2.4 intra best, no RD levels": {"effort": "best", "intra_rd": False},
    ".mdc 2.4 intra fast, no RD mode decision": {"intra_attrs": {"RD_MODE_EFFORTS": ()}},
    ".mdc 2.4 intra best, no RD mode decision": {"effort": "best", "intra_attrs": {"RD_MODE_EFFORTS": ()}},
    ".mdc 2.1 fast": {"entropy": "arith", "intra": False, "compact": False},
    ".mdc 2.1 best (RD levels)": {"entropy": "arith", "intra": False, "effort": "best", "compact": False},
    ".mdc 1.0 fast": {"entropy": "huffman"},
    ".mdc 1.0 best": {"entropy": "huffman", "effort": "best"},
}


def _blocks(a: np.ndarray) -> np.ndarray:
    n, r, c = a.shape
    return a[:, : r // 8 * 8, : c // 8 * 8].reshape(n, r // 8, 8, c // 8, 8).transpose(0, 1, 3, 2, 4).reshape(-1, 64)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--bpp", type=float, default=1.0)
    ap.add_argument("--only", default="", help="comma-separated variant names (substrings) to run")
    args = ap.parse_args(argv)
    only = [o for o in args.only.split(",") if o]
    paths = sorted((args.data / SERIES).glob("*.dcm"))
    picks = [paths[round(i * (len(paths) - 1) / 6)] for i in range(7)]
    dss = [pydicom.dcmread(p) for p in picks]
    slope, icpt = float(dss[0].RescaleSlope), float(dss[0].RescaleIntercept)
    frames = np.stack([d.pixel_array for d in dss])
    orig = _blocks(frames.astype(float) * slope + icpt)
    sd = orig.std(1)
    loose = (orig.mean(1) > -150) & (orig.mean(1) < 250) & (sd >= 8)
    default_rd = mdc_mod.INTRA_RDOQ_EFFORTS
    for name, kw in VARIANTS.items():
        if only and not any(o in name for o in only):
            continue
        kw = dict(kw)
        rd = kw.pop("intra_rd", None)  # the intra RD levels switched on (every effort) or off
        mdc_mod.INTRA_RDOQ_EFFORTS = default_rd if rd is None else ("fast", "best") if rd else ()
        attrs = kw.pop("intra_attrs", {})  # intra encoder switches (intra.RD_MODE_EFFORTS ...) for this variant
        saved = {k: getattr(intra_mod, k) for k in attrs}
        for k, v in attrs.items():
            setattr(intra_mod, k, v)
        lo, hi = 1.0, 100.0
        for _ in range(10):
            q = (lo + hi) / 2
            bpp = len(medcodec.encode(frames, bits_stored=12, quality=q, **kw)) * 8 / frames.size
            lo, hi = (lo, q) if bpp > args.bpp else (q, hi)
        data = medcodec.encode(frames, bits_stored=12, quality=lo, **kw)
        dec = medcodec.decode(data)
        t = texture_retention(frames, dec, rescale_slope=slope, rescale_intercept=icpt)
        ret = _blocks(dec.astype(float) * slope + icpt).std(1)[loose] / sd[loose]
        psnr = 10 * np.log10(4095**2 / np.mean((dec.astype(float) - frames) ** 2))
        print(f"{name:30s} {len(data) * 8 / frames.size:.3f} bpp  PSNR {psnr:.2f} dB  issue 11: "
              f"{t['flattened_fraction'] * 100:.2f} % flattened, median {t['median_retention']:.3f} "
              f"({t['blocks']} blocks)  loose: {np.mean(ret < 0.5) * 100:.2f} %, median {np.median(ret):.3f} "
              f"({int(loose.sum())} blocks)", flush=True)  # fmt: skip
        for k, v in saved.items():
            setattr(intra_mod, k, v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
