"""Streams written by earlier encoder settings must decode to the same pixels forever.

``tests/golden/legacy-q87.5/`` holds the golden files made before the quality scale was
recalibrated (quality 75 moved one octave finer; see docs/design-notes.md). The format did not
change, so these streams must still decode exactly to their recorded pixels. Decode only:
the current encoder makes different (finer) tables for the same quality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import medcodec

LEGACY = Path(__file__).resolve().parent.parent / "golden" / "legacy-q87.5"


@pytest.mark.parametrize("profile", sorted(p.name for p in LEGACY.iterdir()))
def test_legacy_stream_decodes_exactly(profile: str) -> None:
    folder = LEGACY / profile
    out = medcodec.decode((folder / "encoded.bin").read_bytes(), jobs=1)
    decoded = np.load(folder / "decoded.npy")
    assert out.dtype == decoded.dtype
    np.testing.assert_array_equal(out, decoded)
    # and the recorded input is still within the stream's documented error bound
    from medcodec.codec import quantize

    bound = quantize.error_bound(medcodec.read_header((folder / "encoded.bin").read_bytes()).qtables[0])
    assert np.abs(out.astype(np.int64) - np.load(folder / "array.npy")).max() <= bound
