#!/usr/bin/env python3
"""Issue 12: would sign data hiding (HEVC's SDH, H.265 §7.4.9.11 / §8.6.2) pay in ``.mdc``'s intra
frames? Measurement only, no format change.

Usage (from the repository root; seconds per image)::

    nice -n 10 .venv/bin/python benchmarks/explore_sign_hiding.py FILE.dcm [FILE.dcm ...]

Every non-zero level's sign is one raw bit of the range coder (docs/format.md §13.2): 14-22 % of
a default stream. SDH leaves out the sign of one non-zero level per coefficient group that holds
enough of them, and the decoder takes it from the parity of the group's magnitudes; the encoder
makes the parity right by moving one level of the group by one, where that costs least. Per
image and quality this prints:

* ``groups``: the bits SDH would save in the default's own stream (``medcodec.encode(x,
  quality=q)``, its levels read back by the decoder): one per group of 16 zigzag positions (1-15,
  16-31, 32-47, 48-63) whose first and last non-zero levels lie 4 or more positions apart
  (HEVC's rule), as a share of the stream;
* ``cost``: what the parity fixes would cost, in bits at the default's own exchange rate: on the
  frame's plain DCT coefficients / steps (the default's steps; no intra prediction, which the
  measurement cannot reach from outside), levels rounded, for each qualifying group whose parity
  disagrees with its first level's sign (half of them) the cheapest move of a level in the group's
  span one step towards its coefficient (squared error ``1 - 2 |x - l|`` steps^2), summed in
  sample units (orthonormal DCT), divided by the slope of the default's curve at that quality
  (squared error per bit, from the qualities 3 either side);
* ``net``: groups - cost, the share of the stream SDH would save at the same squared error
  (first order; the moves' effect on the other symbols' rates is left out, and an encoder that
  decides levels by rate and distortion, as the default does, pays less than the cheapest move
  of rounded levels).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pydicom

import medcodec
from medcodec.codec import _kernels_ms as KM
from medcodec.codec import intra, levelshift, quantize
from medcodec.codec.framecoder import FrameCoder

QUALITIES = (40, 60, 75, 85, 93)
GROUP = 16
SPAN = 4


def default_levels(stream: bytes) -> np.ndarray:
    """The levels of the (one) intra frame of a default stream, as its decoder reads them."""
    got: list[np.ndarray] = []
    kernel = KM.decode_coefficients_ms

    def spy(data, start, end, bx, levels, *rest):  # type: ignore[no-untyped-def]
        status = kernel(data, start, end, bx, levels, *rest)
        got.append(levels)
        return status

    intra.KM.decode_coefficients_ms = spy
    try:
        medcodec.decode(stream)
    finally:
        intra.KM.decode_coefficients_ms = kernel
    return got[0]


def qualifying(levels: np.ndarray, g: int) -> np.ndarray:
    """Per block: group ``g`` of its zigzag AC levels qualifies for a hidden sign."""
    lo, hi = max(1, GROUP * g), GROUP * g + GROUP
    nz = levels[:, lo:hi] != 0
    first = np.argmax(nz, 1)
    last = nz.shape[1] - 1 - np.argmax(nz[:, ::-1], 1)
    return nz.any(1) & (last - first >= SPAN)


def fix_sse(x: np.ndarray, bits: int, signed: bool, q: int) -> float:
    """Squared error (sample units) the parity fixes add on the plain DCT of ``x`` with the default's steps."""
    rb = levelshift.default_range_bits(x, int(x.min()), int(x.max()), bits)
    coder = FrameCoder.for_table(quantize.quant_table(q, rb, table=quantize.MDC_DEFAULT_TABLE), bits, signed)
    a = coder.scaled(x)
    r = np.rint(a)
    w = coder.steps_zz.astype(np.float64) ** 2
    total = 0.0
    for g in range(64 // GROUP):
        lo, hi = max(1, GROUP * g), GROUP * g + GROUP
        A, R = a[:, lo:hi], r[:, lo:hi]
        nz = R != 0
        first = np.argmax(nz, 1)
        last = nz.shape[1] - 1 - np.argmax(nz[:, ::-1], 1)
        ok = qualifying(r.astype(np.int32), g)
        negative = np.take_along_axis(R, first[:, None], 1)[:, 0] < 0
        wrong = ok & ((np.abs(R).sum(1).astype(np.int64) & 1).astype(bool) != negative)
        idx = np.arange(A.shape[1])[None, :]
        span = (idx >= first[:, None]) & (idx <= last[:, None])
        cost = np.where(span, (1.0 - 2.0 * np.abs(A - R)) * w[lo:hi], np.inf).min(1)
        total += float(cost[wrong].sum())
    return total


def point(x: np.ndarray, bits: int, q: int) -> tuple[int, float]:
    """(stream bits, squared error) of the default at quality ``q``."""
    s = medcodec.encode(x, quality=q, bits_stored=bits)
    d = medcodec.decode(s).astype(np.float64) - x
    return len(s) * 8, float(np.sum(d * d))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path, help="DICOM files (first frame each)")
    args = ap.parse_args(argv)
    print(f"{'image':32s} {'q':>3s} {'bpp':>5s} {'groups':>7s} {'cost':>7s} {'net':>7s}  (% of the stream)")
    for f in args.files:
        ds = pydicom.dcmread(f)
        x = ds.pixel_array
        x = x[0] if x.ndim == 3 else x
        bits = int(ds.BitsStored)
        signed = x.dtype.kind == "i"
        nets = []
        for q in QUALITIES:
            stream = medcodec.encode(x, quality=q, bits_stored=bits)
            nbits = len(stream) * 8
            levels = default_levels(stream)
            saved = sum(int(qualifying(levels, g).sum()) for g in range(64 // GROUP))
            (b0, d0), (b1, d1) = point(x, bits, q - 3), point(x, bits, q + 3)
            slope = (d0 - d1) / max(b1 - b0, 1)  # squared error per bit
            cost = fix_sse(x, bits, signed, q) / slope if slope > 0 else float("nan")
            nets.append(100 * (saved - cost) / nbits)
            print(f"{f.name[:32]:32s} {q:3d} {nbits / x.size:5.2f} {100 * saved / nbits:6.2f}% "
                  f"{100 * cost / nbits:6.2f}% {nets[-1]:6.2f}%", flush=True)  # fmt: skip
        print(f"{f.name[:32]:32s} mean net {np.mean(nets):.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
