"""The dcmh segment: source headers carried inside a .mdc, verbatim or re-serialised."""

from __future__ import annotations

import pytest
from pydicom.data import get_testdata_file

import medcodec
from medcodec.dicom import read_image
from medcodec.dicom.embed import pack_headers, unpack_headers


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_bigendian.dcm"])
def test_pack_unpack_verbatim_and_reserialised(name: str) -> None:
    image = read_image(get_testdata_file(name))
    assert image.header_bytes is not None and b"DICM" in image.header_bytes[:200]
    for raw in (image.header_bytes, None):
        payload = pack_headers([(1, image.dataset, raw), (1, image.dataset, raw)])
        entries = unpack_headers(payload, 2)
        assert [(first, n) for first, n, _ in entries] == [(0, 1), (1, 1)]
        for _, _, ds in entries:
            assert ds.SOPInstanceUID == image.sop_instance_uid
            assert ds.Rows == image.dataset.Rows and "PixelData" not in ds


def test_unpack_rejects_inconsistent_payloads() -> None:
    image = read_image(get_testdata_file("CT_small.dcm"))
    payload = pack_headers([(1, image.dataset, image.header_bytes)])
    with pytest.raises(medcodec.CorruptStreamError, match="covers 1 frames"):
        unpack_headers(payload, 3)
    with pytest.raises(medcodec.CorruptStreamError):
        unpack_headers(payload[:20], 1)
    with pytest.raises(medcodec.CorruptStreamError):
        unpack_headers(b"\x01", 1)
