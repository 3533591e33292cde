"""Streams written by earlier encoder settings must decode to the same pixels forever.

``tests/golden/legacy-q87.5/`` holds the golden files made before the quality scale was
recalibrated (quality 75 moved one octave finer; see docs/design-notes.md). The format did not
change, so these streams must still decode exactly to their recorded pixels. Decode only:
the current encoder makes different (finer) tables for the same quality.

``tests/golden/legacy-gemm/`` holds the two golden streams of the forward path that was one
float64 matrix product per frame (before the fused numba kernels). Today's encoder gives the
same bytes except where a coefficient lies exactly half-way between two levels: the product's
rounding noise picked a side there, the kernels divide those coefficients exactly and round the
half away from zero, as the quantizer documents (1 level in ct.u2.b12.q75, 6 in xr.u1.b8.q95).

``tests/golden/legacy-intra-2.2a/`` holds the two format 2.2 (intra) golden streams of the first
intra encoder (every mode predicted in full, 3 DCT trials, division quantizer). The encoder now
ranks modes on a coarse SAD and tries 2; the format did not change, so the decoder (now the sparse
IDCT and table prediction) must still give their recorded pixels exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import medcodec

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
PROFILES = sorted(f"{d.name}/{p.name}" for d in GOLDEN.glob("legacy-*") for p in d.iterdir() if p.is_dir())


@pytest.mark.parametrize("profile", PROFILES)
def test_legacy_stream_decodes_exactly(profile: str) -> None:
    folder = GOLDEN / profile
    out = medcodec.decode((folder / "encoded.bin").read_bytes(), jobs=1)
    decoded = np.load(folder / "decoded.npy")
    assert out.dtype == decoded.dtype
    np.testing.assert_array_equal(out, decoded)
    # and the recorded input is still within the stream's documented error bound
    from medcodec.codec import quantize

    bound = quantize.error_bound(medcodec.read_header((folder / "encoded.bin").read_bytes()).qtables[0])
    assert np.abs(out.astype(np.int64) - np.load(folder / "array.npy")).max() <= bound
