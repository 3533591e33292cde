#!/usr/bin/env python3
"""Encode and decode time of format 2.6 (16x16 blocks) against 2.5, the same frames, round-robin.

Usage (from the repository root)::

    nice -n 10 python benchmarks/time_mdc26.py [--repeat 5] [--qualities 35 70] [--trials N]

For the middle slice of the chest CT, the head CT and the brain MR, ``medcodec.encode(f, quality=q,
jobs=1)`` and ``medcodec.decode`` with ``intra.BIG_EFFORTS`` empty (2.5) and set (2.6), for
``effort="fast"`` and ``"best"``: thread CPU time, best of ``--repeat``, the variants interleaved
(:func:`_timing.round_robin`), and the ratio 2.6 / 2.5; the stream sizes too. ``--trials N``: the
baseline is 2.6 with ``intra.BIG_MODE_TRIALS`` N for every effort instead of 2.5 (N = 0: the 16x16
blocks DC only, the encode work of 2.6 before its SMOOTH and paeth modes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pydicom
from _timing import round_robin

import medcodec
from medcodec.codec import intra

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SERIES = ("ct_chest_lungpetctdx_A0001_philips", "ct_head_phantom_philips_ingenuity", "mr_head_ge_signa_t1_ctk")


def time_one(f: np.ndarray, bits: int, signed: bool, effort: str, q: int, repeat: int, trials: int | None) -> str:
    """One line: both formats' bpp, encode and decode time (ms) and the ratios (the baseline labelled
    2.5: 2.6 with ``trials`` 16x16 mode trials if given)."""
    saved, saved_trials = intra.BIG_EFFORTS, intra.BIG_MODE_TRIALS

    def enc(base: bool) -> bytes:
        if base and trials is not None:
            intra.BIG_MODE_TRIALS = {e: trials for e in saved_trials}
        elif base:
            intra.BIG_EFFORTS = ()
        else:
            intra.BIG_EFFORTS = ("fast", "best")
        try:
            return medcodec.encode(f, quality=q, effort=effort, bits_stored=bits, signed=signed, jobs=1)
        finally:
            intra.BIG_EFFORTS, intra.BIG_MODE_TRIALS = saved, saved_trials

    blobs = {"2.5": enc(True), "2.6": enc(False)}
    stages = {
        "enc 2.5": lambda: enc(True),
        "enc 2.6": lambda: enc(False),
        "dec 2.5": lambda: medcodec.decode(blobs["2.5"], jobs=1),
        "dec 2.6": lambda: medcodec.decode(blobs["2.6"], jobs=1),
    }
    t = round_robin(stages, repeat)
    bpp = {k: len(v) * 8 / f.size for k, v in blobs.items()}
    return (f"{effort} q{q}: {bpp['2.5']:.3f} / {bpp['2.6']:.3f} bpp; "
            f"encode {t['enc 2.5']:.0f} / {t['enc 2.6']:.0f} ms ({t['enc 2.6'] / t['enc 2.5']:.2f}x), "
            f"decode {t['dec 2.5']:.1f} / {t['dec 2.6']:.1f} ms ({t['dec 2.6'] / t['dec 2.5']:.2f}x)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--qualities", type=int, nargs="*", default=[35, 70])
    ap.add_argument("--trials", type=int, default=None, help="baseline: 2.6 with this many 16x16 mode trials")
    args = ap.parse_args(argv)
    for name in SERIES:
        paths = sorted((args.data / name).glob("*.dcm"))
        ds = pydicom.dcmread(paths[len(paths) // 2])
        f, bits, signed = ds.pixel_array, int(ds.BitsStored), bool(ds.PixelRepresentation)
        for effort in ("fast", "best"):
            for q in args.qualities:
                print(f"{name[:18]:18s} " + time_one(f, bits, signed, effort, q, args.repeat, args.trials), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
