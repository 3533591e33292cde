"""Hypothesis properties: inverses invert, the error bound holds, arbitrary bytes raise only CodecError."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import medcodec
from medcodec.codec import quantize, transform, zigzag
from medcodec.testing.strategies import images

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(images(), st.integers(1, 100))
def test_round_trip_within_bound(case: tuple[np.ndarray, int, bool], quality: int) -> None:
    pixels, bits, signed = case
    data = medcodec.encode(pixels, bits_stored=bits, signed=signed, quality=quality, jobs=1)
    out = medcodec.decode(data, jobs=1)
    assert out.shape == pixels.shape
    bound = quantize.error_bound(medcodec.read_header(data).qtables[0])
    assert np.abs(out.astype(np.int64) - pixels).max() <= bound


@SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_codec_errors(data: bytes) -> None:
    for prefix in (b"", b"\x89MDC\r\n\x1a\n", b"\xff\xd8"):
        try:
            medcodec.decode(prefix + data)
        except medcodec.CodecError:
            pass


@SETTINGS
@given(st.integers(1, 30), st.integers(1, 30), st.integers(0, 2**31))
def test_blockify_dct_zigzag_invert(rows: int, cols: int, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(rows, cols))
    blocks = transform.blockify(x)
    np.testing.assert_allclose(transform.idct(transform.fdct(blocks)), blocks, atol=1e-9)
    np.testing.assert_array_equal(transform.unblockify(blocks, rows, cols), x)
    np.testing.assert_array_equal(zigzag.from_zigzag(zigzag.to_zigzag(blocks)), blocks)
