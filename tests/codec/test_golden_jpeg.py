"""JPEG golden files: committed ISO 10918-1 streams that every later version must decode to the same
pixels and re-encode byte for byte (numcodecs fixture habit, like ``test_golden.py`` for ``.mdc``).

``tests/golden/<profile>/``: ``array.npy`` (the synthetic input of :func:`test_golden.make_array`),
``config.json`` (encode arguments), ``encoded.jpg`` (the stream) and ``decoded.npy`` (our decoder's
pixels when the file was made). Regenerate only deliberately (``--regen-golden``) and say why.
The streams are also decoded by libjpeg (pylibjpeg-libjpeg), an independent oracle: T.81 leaves
the IDCT's rounding to the decoder, so the two agree within one stored unit.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_golden import GOLDEN, check_golden

# Made when an image's own span set the steps (11 and 9 bits here); since 2026-12-03 a JPEG's
# default is its bits_stored (levelshift.default_range_bits): re-encoded with the span they had.
PROFILES = {
    "ct.u2.b12.q75.jpeg": dict(shape=(40, 52), bits_stored=12, signed=False, quality=75, format="jpeg",
                               reencode=dict(range_bits=11)),
    "ct.u2.b12.q90.fast.jpeg": dict(
        shape=(40, 52), bits_stored=12, signed=False, quality=90, format="jpeg", effort="fast",
        reencode=dict(range_bits=11),
    ),
    "xr.u1.b8.q95.jpeg": dict(shape=(17, 64), bits_stored=8, signed=False, quality=95, format="jpeg"),
    "mr.u2.b10.q50.rst.jpeg": dict(
        shape=(24, 40), bits_stored=10, signed=False, quality=50, format="jpeg", restart_interval=3,
        reencode=dict(range_bits=9),
    ),
}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_golden_jpeg(profile: str, regen_golden: bool) -> None:
    encoded = check_golden(GOLDEN / profile, PROFILES[profile], "encoded.jpg", regen_golden)
    assert encoded[:2] == b"\xff\xd8" and encoded[-2:] == b"\xff\xd9"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_golden_jpeg_decodes_with_libjpeg(profile: str) -> None:
    from libjpeg import decode as libjpeg_decode

    folder = GOLDEN / profile
    theirs = np.asarray(libjpeg_decode((folder / "encoded.jpg").read_bytes()))
    ours = np.load(folder / "decoded.npy")
    assert theirs.shape == ours.shape
    assert np.abs(theirs.astype(np.int32) - ours).max() <= 1
