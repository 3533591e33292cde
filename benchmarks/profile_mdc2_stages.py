#!/usr/bin/env python3
"""Per-stage time of ``.mdc`` 2.1 fast (encode and decode) on one slice of each shared series.

Usage (from the repository root)::

    nice -n 10 python benchmarks/profile_mdc2_stages.py [--bpp 1.0] [--repeat 15]

For the middle slice of the chest CT, the head CT and the 256x256 MR, at the quality whose
stream is nearest ``--bpp``: every stage of the encoder (DCT, rounding, offsets, the
reconstruction and five deblocking trials, the restoration filter's search with one class (what
fast encoding does) and, in parentheses, with 1, 4 or 8 activity classes and its activity,
quantiles and statistics, the level coder) and of the decoder (levels, inverse DCT with
offsets, deblocking, restoration filter), the whole ``medcodec.encode`` / ``decode``, and
libjpeg-turbo 12-bit on the same slice. Thread CPU time (``time.thread_time``), stages measured
round-robin (A B C ... A B C ...: the same load on each), best of ``--repeat``. For the level
coder also the adaptive symbols and raw-bit calls it codes and the time per symbol and per
coded bit.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pydicom  # noqa: E402

import medcodec  # noqa: E402
from medcodec import external  # noqa: E402
from medcodec.codec import _kernels_v2 as K  # noqa: E402
from medcodec.codec import container, mdc2, transform  # noqa: E402
from medcodec.codec.framecoder import FrameCoder  # noqa: E402
from medcodec.spec import PixelSpec  # noqa: E402
from _timing import round_robin  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SERIES = ("ct_chest_lungpetctdx_A0001_philips", "ct_head_phantom_philips_ingenuity", "mr_head_ge_signa_t1_ctk")


def symbol_counts(levels: np.ndarray) -> tuple[int, int]:
    """(adaptive symbols, raw-value calls) the 2.1 coder spends on these levels (docs/format.md §13.2)."""
    ac = levels[:, 1:]
    nz = np.count_nonzero(ac, axis=1)
    nzpos = ac != 0
    last = np.where(nz > 0, 63 - np.argmax(nzpos[:, ::-1], axis=1), 0)  # zigzag index of the last non-zero
    m = np.abs(ac.astype(np.int64))
    br = np.where(m >= 3, np.minimum(4, (m - 3) // 3 + 1), 0)
    esc = m >= 15
    adaptive = len(levels) + int(np.sum(nz >= 15)) * 2 + len(levels) + int(last.sum()) + int(br.sum()) + int(esc.sum())
    raw = int(np.count_nonzero(ac)) + int(esc.sum())
    # DC: the bit under the leading one is adaptive; sign and the rest raw (approximate: one call each)
    return adaptive, raw


def intra_stages(f: np.ndarray, bits: int, signed: bool, q: int, coder: FrameCoder) -> dict[str, Callable[[], object]]:
    """The 2.2 intra encoder's stages at quality q (``intra=True``: the same steps as 2.1's)."""
    from medcodec.codec import intra
    from medcodec.codec.zigzag import ZIGZAG

    scaled = coder.scaled(f)
    offs = mdc2.reconstruction_offsets(mdc2.round_scaled(scaled), scaled)
    enc = intra.encode_intra_frame(f, coder, offs)
    x = np.pad(f.astype(np.int64), ((0, -f.shape[0] % 8), (0, -f.shape[1] % 8)), mode="edge")
    nb = x.size // 64
    steps = coder.steps.astype(np.float64).reshape(8, 8)
    levels = np.zeros((nb, 64), np.int32)
    full = np.zeros(64, np.int64)
    full[1:] = offs

    def loop() -> None:
        intra.KI.encode_intra(x, steps, ZIGZAG.astype(np.int64), full, transform.DCT_MATRIX, intra.lambda_for(coder),
                              np.int64(coder.offset), np.int64(coder._lo), np.int64(coder._hi), levels,
                              np.zeros(nb, np.int64), np.zeros_like(x))  # fmt: skip

    bx = x.shape[1] // 8
    return {
        "2.2 intra encode (whole)": lambda: medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, intra=True,
                                                            jobs=1),  # fmt: skip
        "  intra loop (prediction, trials, recon)": loop,
        "  intra frame (loop + mode + level coding)": lambda: intra.encode_intra_frame(f, coder, offs),
        "  reconstruct-free deblocking trials": lambda: mdc2.deblocked_frame(coder, None, offs, f, base=enc.recon),
        "  level coding (intra levels)": lambda: intra._encode_levels(levels, bx),
    }


def intra_decode_stages(f: np.ndarray, bits: int, signed: bool, q: int) -> dict[str, Callable[[], object]]:
    """The 2.2 intra decoder's stages: modes, levels, prediction + IDCT (and its plain twin)."""
    from medcodec.codec import intra
    from medcodec.codec.zigzag import ZIGZAG

    with intra.written_mode_model(1):  # format 2.2's intra frames (the default writes 2.11's since)
        data = medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, intra=True, compact=False, jobs=1)
    header, index = container.parse_container(data)
    fr = mdc2.read_dct_frame(data, header, index[0])
    payload = np.frombuffer(data[fr.start : fr.end], np.uint8)
    coder = FrameCoder.for_table(header.qtables[0], bits, signed)
    rows, cols = f.shape
    prow, pcol = rows + (-rows % 8), cols + (-cols % 8)
    bx, nb = pcol // 8, prow * pcol // 64
    nmode = int.from_bytes(payload[:4].tobytes(), "little")
    modes = np.zeros(nb, np.int64)
    intra.KI.decode_modes(payload, 4, 4 + nmode, bx, modes)
    levels = np.zeros((nb, 64), np.int32)
    intra.KM.decode_coefficients_ms(payload, 4 + nmode, payload.size, bx, levels)
    args = (levels, modes, coder.steps.astype(np.float64).reshape(8, 8), ZIGZAG.astype(np.int64),
            intra._offsets(fr.offsets), transform.DCT_MATRIX, np.int64(coder.offset), np.int64(coder._lo),
            np.int64(coder._hi))  # fmt: skip
    print(f"(2.2 intra q{q}: {len(data) * 8 / f.size:.2f} bpp)")
    return {
        "2.2 intra decode (whole)": lambda: medcodec.decode(data, jobs=1),
        "  modes": lambda: intra.KI.decode_modes(payload, 4, 4 + nmode, bx, np.zeros(nb, np.int64)),
        "  levels (intra)": lambda: intra.KM.decode_coefficients_ms(payload, 4 + nmode, payload.size, bx,
                                                                    np.zeros((nb, 64), np.int32)),  # fmt: skip
        "  prediction + IDCT": lambda: intra.KI.decode_intra(*args, np.zeros((prow, pcol), np.int64)),
        "  (prediction + IDCT, plain twin)": lambda: intra.KI.decode_intra_plain(*args, np.zeros((prow, pcol), np.int64)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--bpp", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--entropy", default="arith")
    ap.add_argument("--intra", action="store_true", help="also the stages of 2.2 intra frames (same quality)")
    args = ap.parse_args(argv)
    for name in SERIES:
        paths = sorted((args.data / name).glob("*.dcm"))
        ds = pydicom.dcmread(paths[len(paths) // 2])
        f = ds.pixel_array
        bits, signed = int(ds.BitsStored), bool(ds.PixelRepresentation)
        lo_, hi_ = 15, 95
        while hi_ - lo_ > 1:  # quality nearest the bpp asked (bpp grows with quality)
            mid = (lo_ + hi_) // 2
            b = medcodec.encode(f, bits_stored=bits, signed=signed, quality=mid, entropy=args.entropy, intra=False, jobs=1)
            lo_, hi_ = (mid, hi_) if len(b) * 8 / f.size < args.bpp else (lo_, mid)
        q = lo_
        data = medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, entropy=args.entropy, intra=False, jobs=1)
        header, index = container.parse_container(data)
        fr = mdc2.read_dct_frame(data, header, index[0])
        arr = np.frombuffer(data, np.uint8)
        rows, cols = f.shape
        by, bx = transform.blocks_shape(rows, cols)
        coder = FrameCoder.for_table(header.qtables[0], bits, signed)
        lo, hi = coder._lo, coder._hi
        levels = mdc2.decode_levels(arr, fr.start, fr.end, by * bx, bx, coder=header.entropy)
        img = mdc2.reconstruct_with_offsets(coder, levels, fr.offsets, rows, cols)
        deb = img.copy()
        if fr.deblock:
            K.deblock(deb, *fr.deblock, lo, hi)
        scaled = coder.scaled(f)
        step = K.FILTER_SAMPLE
        sampled = K.filter_activity_sampled(deb, step, np.empty((-(-rows // step), -(-cols // step)), np.int64))
        t8 = mdc2.int_quantiles(sampled, np.arange(1, 8) / 8, "lower")
        bins = np.searchsorted(t8, sampled, side="right").astype(np.int64)

        def stats() -> None:
            K.filter_stats(deb, f, bins, 8, np.zeros((8, 6, 6)), np.zeros((8, 6)), np.zeros(8, np.int64),
                           np.zeros(8), np.zeros(8))  # fmt: skip

        def stats1() -> None:
            K.filter_stats_one(deb, f, np.zeros((1, 6, 6)), np.zeros((1, 6)), np.zeros(1, np.int64),
                               np.zeros(1), np.zeros(1))  # fmt: skip

        enc_stages = {
            "encode (whole)": lambda: medcodec.encode(f, bits_stored=bits, signed=signed, quality=q,
                                                      entropy=args.entropy, intra=False, jobs=1),  # fmt: skip
            "  DCT (scaled)": lambda: coder.scaled(f),
            "  rounding": lambda: mdc2.round_scaled(scaled),
            "  offsets": lambda: mdc2.reconstruction_offsets(levels, scaled),
            "  reconstruct + 5 deblocking trials": lambda: mdc2.deblocked_frame(coder, levels, fr.offsets, f),
            "  restoration search (fast: 1 class)": lambda: mdc2.choose_restoration(coder, deb, f,
                                                                                     mdc2.FAST_FILTER_CLASSES),
            "    statistics (1 class)": stats1,
            "  (restoration search, 1/4/8 classes)": lambda: mdc2.choose_restoration(coder, deb, f),
            "    (activity, sampled)": lambda: K.filter_activity_sampled(deb, step, np.empty(sampled.shape, np.int64)),
            "    (quantiles)": lambda: mdc2.int_quantiles(sampled, np.arange(1, 8) / 8, "lower"),
            "    (statistics, 8 bins)": stats,
            "  level coding": lambda: mdc2.encode_levels(levels, bx, header.entropy),
        }
        dec_stages = {
            "decode (whole)": lambda: medcodec.decode(data, jobs=1),
            "  levels": lambda: mdc2.decode_levels(arr, fr.start, fr.end, by * bx, bx, coder=header.entropy),
            "  inverse DCT + offsets": lambda: mdc2.reconstruct_with_offsets(coder, levels, fr.offsets, rows, cols),
            "  deblocking": (lambda: K.deblock(img.copy(), *fr.deblock, lo, hi)) if fr.deblock else (lambda: None),
            "  restoration": (lambda: fr.restoration.apply(deb, lo, hi)) if fr.restoration else (lambda: None),
        }
        if args.intra:
            enc_stages.update(intra_stages(f, bits, signed, q, coder))
            dec_stages.update(intra_decode_stages(f, bits, signed, q))
        spec = PixelSpec(bits_stored=bits, signed=signed)
        u = external.to_unsigned(f, spec)[0].astype(np.uint16)
        jq = 50
        jb = external.jpeg8_encode(u, bits_stored=bits, quality=jq) if bits <= 12 else None
        ref = {}
        if jb is not None:
            ref = {"libjpeg-turbo encode": lambda: external.jpeg8_encode(u, bits_stored=bits, quality=jq),
                   "libjpeg-turbo decode": lambda: external.jpeg8_decode(jb)}  # fmt: skip
        t = round_robin({**enc_stages, **dec_stages, **ref}, args.repeat)
        nsym, nraw = symbol_counts(levels)
        coded_bits = (fr.end - fr.start) * 8
        ncls = 0 if fr.restoration is None else len(fr.restoration.weights)
        print(f"\n## {name} middle slice {rows}x{cols}, q{q}: {len(data) * 8 / f.size:.2f} bpp, deblocking "
              f"{'on' if fr.deblock else 'off'}, restoration {ncls} classes")  # fmt: skip
        for k, v in t.items():
            print(f"{k:40s} {v:7.3f} ms")
        lv_ms = t["  levels"]
        print(f"level coder: {nsym} adaptive symbols + {nraw} raw values, {coded_bits} coded bits; decode "
              f"{lv_ms * 1e6 / nsym:.1f} ns/symbol, {lv_ms * 1e6 / coded_bits:.2f} ns/bit; encode "
              f"{t['  level coding'] * 1e6 / nsym:.1f} ns/symbol")  # fmt: skip
        if jb is not None:
            print(f"libjpeg-turbo q{jq}: {len(jb) * 8 / f.size:.2f} bpp; ratios: encode "
                  f"{t['libjpeg-turbo encode'] / t['encode (whole)']:.2f}x, decode "
                  f"{t['libjpeg-turbo decode'] / t['decode (whole)']:.2f}x")  # fmt: skip
    print(f"\nload average {open('/proc/loadavg').read().split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
