#!/usr/bin/env python3
"""Where one slice's ``.mdc`` 2.x time goes: encode, decode and the decoder's stages.

Usage (from the repository root)::

    nice -n 10 python benchmarks/profile_mdc2_slice.py [--quality 45 70] [--entropy arith]

One slice of the chest CT (the middle one), thread CPU time (``time.thread_time``), best of
``--repeat``: the whole ``medcodec.encode`` / ``decode``, the decoder's level decoding, inverse
DCT with offsets, deblocking and restoration filter, and libjpeg-turbo 12-bit on the same slice.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pydicom

import medcodec
from medcodec import external
from medcodec.codec import container, mdc2, transform
from medcodec.codec.framecoder import FrameCoder

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def best(fn, repeat: int) -> float:
    b = float("inf")
    for _ in range(repeat):
        t = time.thread_time()
        fn()
        b = min(b, time.thread_time() - t)
    return b * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--quality", type=int, nargs="+", default=[45, 70])
    ap.add_argument("--entropy", default="arith")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args(argv)
    paths = sorted((args.data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))
    f = pydicom.dcmread(paths[len(paths) // 2]).pixel_array
    by, bx = transform.blocks_shape(*f.shape)
    for q in args.quality:
        data = medcodec.encode(f, bits_stored=12, quality=q, entropy=args.entropy, intra=False, jobs=1)
        header, index = container.parse_container(data)
        fr = mdc2.read_dct_frame(data, header, index[0])
        arr = np.frombuffer(data, np.uint8)
        coder = FrameCoder.for_table(header.qtables[0], 12, False)
        levels = mdc2.decode_levels(arr, fr.start, fr.end, by * bx, bx, coder=header.entropy)
        img = (mdc2.reconstruct_with_offsets(coder, levels, fr.offsets, *f.shape) if fr.offsets is not None
               else coder.reconstruct(levels, *f.shape))  # fmt: skip
        t_enc = best(lambda: medcodec.encode(f, bits_stored=12, quality=q, entropy=args.entropy, intra=False, jobs=1), args.repeat)
        t_dec = best(lambda: medcodec.decode(data, jobs=1), args.repeat)
        t_lv = best(lambda: mdc2.decode_levels(arr, fr.start, fr.end, by * bx, bx, coder=header.entropy), args.repeat)
        t_rec = best(lambda: mdc2.reconstruct_with_offsets(coder, levels, fr.offsets, *f.shape), args.repeat)
        t_db = best(lambda: mdc2.K.deblock(img.copy(), *fr.deblock, coder._lo, coder._hi), args.repeat) if fr.deblock else 0.0
        t_rs = best(lambda: fr.restoration.apply(img, coder._lo, coder._hi), args.repeat) if fr.restoration else 0.0
        ncls = 0 if fr.restoration is None else len(fr.restoration.weights)
        print(f".mdc {header.version[0]}.{header.version[1]} q{q}, {len(data) * 8 / f.size:.2f} bpp: encode {t_enc:.2f} ms;"
              f" decode {t_dec:.2f} ms = levels {t_lv:.2f} + inverse DCT/offsets {t_rec:.2f} + deblocking {t_db:.2f}"
              f" + restoration {t_rs:.2f} ({ncls} classes)")  # fmt: skip
    for jq in (30, 50):
        b = external.jpeg8_encode(f.astype(np.uint16), bits_stored=12, quality=jq)
        te = best(lambda: external.jpeg8_encode(f.astype(np.uint16), bits_stored=12, quality=jq), args.repeat)
        print(f"libjpeg-turbo q{jq}, {len(b) * 8 / f.size:.2f} bpp: encode {te:.2f} ms, decode "
              f"{best(lambda: external.jpeg8_decode(b), args.repeat):.2f} ms")  # fmt: skip
    print(f"load average {open('/proc/loadavg').read().split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
