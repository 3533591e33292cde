"""Lossless .mdc v2 against JPEG-LS (CharLS) on the real series: bit-exact and no larger."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

import medcodec
from medcodec import external
from medcodec.spec import PixelSpec

pytestmark = pytest.mark.realdata


def _slices(folder: Path, n: int) -> list[Path]:
    paths = sorted(folder.glob("*.dcm"))
    return [paths[round(i * (len(paths) - 1) / (n - 1))] for i in range(n)] if n > 1 else paths[:1]


@pytest.mark.parametrize(
    "where,n",
    [
        ("ct_chest_lungpetctdx_A0001_philips", 3),
        ("ct_head_phantom_philips_ingenuity", 3),
        ("mr_head_ge_signa_t1_ctk", 4),
        ("singles/cr_RG3_1760x1760_10bit_uncompressed.dcm", 1),
        ("singles/ct_512x512_signed16_j2k_lossless.dcm", 1),
    ],
)
def test_lossless_bit_exact_and_not_larger_than_charls(shared_data: Path, where: str, n: int) -> None:
    target = shared_data / where
    paths = [target] if target.is_file() else _slices(target, n)
    ours = charls = 0
    for path in paths:
        ds = pydicom.dcmread(path)
        bits, signed = int(ds.BitsStored), bool(ds.PixelRepresentation)
        frame = np.asarray(ds.pixel_array)
        data = medcodec.encode(frame, bits_stored=bits, signed=signed, max_error=0)
        np.testing.assert_array_equal(medcodec.decode(data), frame)
        ours += len(data)
        charls += len(external.jpegls_encode(external.to_unsigned(frame, PixelSpec(bits_stored=bits, signed=signed))[0]))
    assert ours <= charls, f"{where}: {ours} bytes, CharLS {charls} ({ours / charls:.3f})"


@pytest.mark.parametrize("k", [1, 3])
def test_near_lossless_bound_on_signed_ct(shared_data: Path, k: int) -> None:
    ds = pydicom.dcmread(shared_data / "singles/ct_512x512_signed16_j2k_lossless.dcm")
    frame = np.asarray(ds.pixel_array)
    data = medcodec.encode(frame, bits_stored=int(ds.BitsStored), signed=True, max_error=k)
    assert int(np.abs(medcodec.decode(data).astype(np.int64) - frame).max()) == k
