"""Compile the numba kernels into numba's on-disk cache, so that no command compiles later.

The kernels (:mod:`._kernels`, :mod:`._kernels_v2`, :mod:`._kernels_ms`, :mod:`._kernels_intra`,
the RD quantizers) are compiled on first use and cached (``cache=True``: ``__pycache__`` next to
the sources, or numba's user cache directory when that is not writable, or ``NUMBA_CACHE_DIR``,
or, when none of these can be written, a private folder under the temporary directory:
:mod:`medcodec._jitcache`). Compiling them all takes 2-4 minutes on a 2-core machine (111 s
measured on 2026-11-30 with an empty ``NUMBA_CACHE_DIR``, 235 s on a loaded one); loading them
from the cache takes about a second. ``make install`` runs this module once after installing, so
a user's first ``medcodec`` command does not pay the compilation; run it yourself after
``pip install``::

    python -m medcodec.codec.warmup

numba uses a cache only where the running user can write, so run it as the user that runs
medcodec (a service account with the same ``NUMBA_CACHE_DIR`` as its service): kernels a root
warm-up wrote into a root-owned ``site-packages`` are compiled again by any other user.

It encodes and decodes small synthetic images through every path the library uses (the
``.mdc`` and JPEG outputs, each effort, 8/12/16-bit, signed and unsigned, restart intervals,
rate control), which compiles each kernel for the argument types those paths pass.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ..errors import RateTargetWarning
from ..warnfilter import filtered

__all__ = ["warm"]


def warm() -> float:
    """Run every kernel once; returns the seconds it took (compilation, or cache loading)."""
    from .intra import without_big_blocks, written_mode_model
    from .pipeline import decode, encode

    t = time.perf_counter()
    y, x = np.mgrid[0:24, 0:20]
    smooth = 0.5 + 0.3 * np.sin(x / 3.0) * np.cos(y / 4.0)
    for bits, signed in ((8, False), (8, True), (12, False), (16, True), (16, False)):
        lo = -(1 << (bits - 1)) if signed else 0
        span = (1 << bits) - 1
        dtype = (np.int8 if signed else np.uint8) if bits <= 8 else (np.int16 if signed else np.uint16)
        img = np.clip(np.rint(lo + span * smooth), lo, lo + span).astype(dtype)
        for effort in ("fast", "best"):  # the default (intra frames) and format 1.0 (Huffman)
            decode(encode(img, bits_stored=bits, signed=signed, quality=70, effort=effort))
            decode(encode(img, bits_stored=bits, signed=signed, quality=70, effort=effort, entropy="huffman"))
        with filtered("ignore", RateTargetWarning):  # a tiny smooth test image cannot reach 8:1 at every depth
            decode(encode(np.stack([img, img]), bits_stored=bits, signed=signed, ratio=8, jobs=1))
        for k in (0, 2):  # the v2 predictive kernels
            decode(encode(img, bits_stored=bits, signed=signed, max_error=k))
        for entropy in ("arith-binary", "arith-multi"):  # v2 DCT levels without intra, both range coders
            decode(encode(img, bits_stored=bits, signed=signed, quality=70, entropy=entropy, intra=False))
        decode(encode(img, bits_stored=bits, signed=signed, quality=70, intra=False, effort="best"))  # RD levels
        decode(encode(img, bits_stored=bits, signed=signed, quality=70, padding=(lo, lo)))  # padding masks (2.3)
        with written_mode_model(1):  # the intra frames of 2.2 / 2.3 streams (mode model 1): still read
            decode(encode(img, bits_stored=bits, signed=signed, quality=70))
        with without_big_blocks():  # 2.5 streams (no 16x16 blocks): still read
            decode(encode(img, bits_stored=bits, signed=signed, quality=70))
        if not signed and bits <= 12:
            for effort in ("fast", "best"):
                decode(encode(img, bits_stored=bits, quality=70, format="jpeg", effort=effort))
            decode(encode(img, bits_stored=bits, format="jpeg", psnr=40, restart_interval=2))
    return time.perf_counter() - t


def main() -> int:
    print(f"medcodec kernels ready in {warm():.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
