#!/usr/bin/env python3
"""Texture retention at ~1 bpp on the chest CT: does a variant flatten noisy soft tissue?

Usage (from the repository root)::

    python benchmarks/bench_texture.py [--data DIR] [--bpp 1.0]

Soft-tissue blocks are the 8x8 blocks of 7 evenly spaced slices whose original mean lies in
-150..250 HU with a standard deviation >= 8 HU. Retention = decoded block std / original block
std; "flattened" = retention below 0.5. Each variant's quality is bisected to ``--bpp``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pydicom

import medcodec

REPO = Path(__file__).resolve().parent.parent
SERIES = "ct_chest_lungpetctdx_A0001_philips"
VARIANTS = {
    ".mdc 1.0 fast": {},
    ".mdc 1.0 best": {"effort": "best"},
    ".mdc 2.1 arith fast": {"entropy": "arith"},
    ".mdc 2.1 arith best": {"entropy": "arith", "effort": "best"},
}


def _blocks(a: np.ndarray) -> np.ndarray:
    n, r, c = a.shape
    return a[:, : r // 8 * 8, : c // 8 * 8].reshape(n, r // 8, 8, c // 8, 8).transpose(0, 1, 3, 2, 4).reshape(-1, 64)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--bpp", type=float, default=1.0)
    args = ap.parse_args(argv)
    paths = sorted((args.data / SERIES).glob("*.dcm"))
    picks = [paths[round(i * (len(paths) - 1) / 6)] for i in range(7)]
    dss = [pydicom.dcmread(p) for p in picks]
    slope, icpt = float(dss[0].RescaleSlope), float(dss[0].RescaleIntercept)
    frames = np.stack([d.pixel_array for d in dss])
    orig = _blocks(frames.astype(float) * slope + icpt)
    sd = orig.std(1)
    soft = (orig.mean(1) > -150) & (orig.mean(1) < 250) & (sd >= 8)
    for name, kw in VARIANTS.items():
        lo, hi = 1.0, 100.0
        for _ in range(10):
            q = (lo + hi) / 2
            bpp = len(medcodec.encode(frames, bits_stored=12, quality=q, **kw)) * 8 / frames.size
            lo, hi = (lo, q) if bpp > args.bpp else (q, hi)
        data = medcodec.encode(frames, bits_stored=12, quality=lo, **kw)
        dec = medcodec.decode(data).astype(float)
        ret = _blocks(dec * slope + icpt).std(1)[soft] / sd[soft]
        psnr = 10 * np.log10(4095**2 / np.mean((dec - frames) ** 2))
        print(f"{name:22s} {len(data) * 8 / frames.size:.3f} bpp  PSNR {psnr:.2f} dB  retention median "
              f"{np.median(ret):.3f} mean {ret.mean():.3f}  flattened {np.mean(ret < 0.5) * 100:.2f}% "
              f"of {int(soft.sum())} blocks")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
