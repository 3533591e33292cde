"""Frames and copies hold what the metadata says (an outside audit, 2026-12-03, on real RT and MR
objects the project had not seen).

* A signed CT with negative stored values is coded shifted in JPEG-LS / JPEG (no sign there), its
  intercept moved in the file's header: right for a whole instance, but ``/frames`` has no header,
  and a client reading them against ``/metadata`` saw every voxel 1000 HU too high. Such frames are
  now refused (406) and the client's next choice is sent.
* Such a lossless copy, sent back by STOW-RS, is the same instance (a duplicate), not a conflict.
* An MR Image Storage object without Pixel Data answers 404 "no pixel data" on every pixel route,
  not pydicom's text in a 406.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from conftest import start_server, stop_server

SIGNED_CT = "ct_512x512_signed16_j2k_lossless.dcm"  # Pixel Representation 1, intercept 0, -1024..1186
JLS, JPEG_EXT, J2K = "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.90"


@pytest.fixture(scope="module")
def served(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    from medcodec.delivery import open_store

    root = tmp_path_factory.mktemp("frame-values")
    nopix = pydicom.dcmread(get_testdata_file("MR_small.dcm"))  # a real MR header, its Pixel Data left out
    del nopix.PixelData
    nopix.SOPInstanceUID = nopix.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    nopix.save_as(root / "nopixels.dcm", enforce_file_format=True)
    # the real enhanced CT (unsigned, rescale -1024 in the shared functional groups) relabelled as
    # signed with intercept 0: JPEG-LS then codes it shifted, its groups' rescale moved
    ect = pydicom.dcmread(shared_data / "singles" / "ct_enhanced_multiframe_2f_512x512.dcm")
    ect.PixelData = (ect.pixel_array.astype(np.int32) - 1024).astype("<i2").tobytes()
    ect.PixelRepresentation = 1
    ect.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0].RescaleIntercept = "0"
    ect.SOPInstanceUID = ect.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ect.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ect.save_as(root / "ect_signed.dcm", enforce_file_format=True)
    ct = shared_data / "singles" / SIGNED_CT
    signed_mr = shared_data / "singles" / "mr_384x384_12bit_signed_dirty_high_bits.dcm"  # no rescale at all
    with open_store(root / "store") as store:
        report = store.ingest([ct, root / "nopixels.dcm", root / "ect_signed.dcm", signed_mr], presets=("diagnostic",))
        records = {o.sop_uid: o.record for o in report.stored}
    assert len(records) == 4, report.summary()
    proc, url, _log = start_server(root / "store")
    try:
        yield url, ct, pydicom.dcmread(ct), nopix, [root / "ect_signed.dcm", signed_mr]
    finally:
        stop_server(proc)


def _base(ds: pydicom.Dataset) -> str:
    return f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


def _parts(r: httpx.Response) -> list[tuple[str, bytes]]:
    boundary = re.search(r'boundary="?([^";]+)"?', r.headers["content-type"]).group(1).encode()  # type: ignore[union-attr]
    out = []
    for chunk in r.content.split(b"--" + boundary)[1:-1]:
        head, body = chunk.split(b"\r\n\r\n", 1)
        out.append((head.decode(), body[:-2]))
    return out


def _stow(c: httpx.Client, url: str, data: bytes) -> httpx.Response:
    """One DICOM file sent by STOW-RS."""
    boundary = "medcodec-test-boundary"
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data
            + f"\r\n--{boundary}--\r\n".encode())  # fmt: skip
    return c.post(url + "/dicomweb/studies", content=body, headers={
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json"})  # fmt: skip


def test_signed_frames_that_a_syntax_would_shift_are_refused_and_the_next_choice_sent(served) -> None:
    url, _, original, _, _ = served
    stored = original.pixel_array
    assert stored.min() < 0  # what makes JPEG-LS / JPEG code it shifted
    frames = url + _base(original) + "/frames/1"
    with httpx.Client(timeout=120) as c:
        for ts, media in ((JLS, "image/jls"), (JPEG_EXT, "image/jpeg")):
            r = c.get(frames, headers={"Accept": f'multipart/related; type="{media}"; transfer-syntax={ts}'})
            assert r.status_code == 406, (ts, r.status_code, r.text[:300])
            detail = r.json()["detail"]
            assert "metadata does not describe" in detail and "rescale" in detail, detail
        # JPEG 2000 keeps the sign: the frame decodes to the stored values
        r = c.get(frames, headers={"Accept": f'multipart/related; type="image/jp2"; transfer-syntax={J2K}'})
        assert r.status_code == 200
        import imagecodecs

        ((_, body),) = _parts(r)
        assert np.array_equal(np.asarray(imagecodecs.jpeg2k_decode(body)).astype(np.int64), stored.astype(np.int64))
        # JPEG-LS first, uncompressed next: the uncompressed frame comes, the stored values
        accept = f'multipart/related; type="image/jls"; transfer-syntax={JLS}, multipart/related; type="application/octet-stream"'
        r = c.get(frames, headers={"Accept": accept})
        assert r.status_code == 200 and 'type="application/octet-stream"' in r.headers["content-type"]
        ((_, body),) = _parts(r)
        assert np.array_equal(np.frombuffer(body, "<i2").reshape(stored.shape), stored)


def test_a_lossless_copy_with_its_pixel_description_rewritten_comes_back_a_duplicate(served) -> None:
    url, _, original, _, _ = served
    with httpx.Client(timeout=120) as c:
        r = c.get(
            url + _base(original),
            headers={"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={JLS}'},
        )
        assert r.status_code == 200
        ((_, data),) = _parts(r)
        copy = pydicom.dcmread(io.BytesIO(data))
        # the whole instance says how its samples were shifted, and its values are the original's
        assert (copy.PixelRepresentation, float(copy.RescaleIntercept)) != (1, 0.0)
        hu = copy.pixel_array.astype(np.float64) * float(copy.RescaleSlope) + float(copy.RescaleIntercept)
        assert np.array_equal(hu, original.pixel_array.astype(np.float64))
        r = _stow(c, url, data)
        assert r.status_code == 200, r.text[:500]
        (ref,) = r.json()["00081199"]["Value"]
        assert ref["00081196"]["Value"] == [0xB000]  # stored already: a duplicate, reported with a warning
        # a copy whose values differ is still a conflict, its Error Comment saying why first
        altered = pydicom.dcmread(io.BytesIO(data))
        arr = altered.pixel_array.copy()
        arr[0, 0] += 1
        altered.PixelData = arr.tobytes()
        altered.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        buf = io.BytesIO()
        altered.save_as(buf, enforce_file_format=True)
        r = _stow(c, url, buf.getvalue())
        assert r.status_code == 409, r.text[:500]
        (failed,) = r.json()["00081198"]["Value"]
        assert failed["00000902"]["Value"] == ["SOP Instance UID stored already with other content"]


def test_an_image_without_pixel_data_is_404_on_every_pixel_route(served) -> None:
    url, _, _, nopix, _ = served
    base = _base(nopix)
    viewer = base.replace("/dicomweb/", "/viewer/api/")
    with httpx.Client(timeout=60) as c:
        jls = {"Accept": f'multipart/related; type="image/jls"; transfer-syntax={JLS}'}
        for path, headers in ((base + "/frames/1", {}), (base + "/frames/1", jls), (base + "/frames/2", {}),
                              (base + "/rendered", {}),
                              (viewer + "/frames/1", {}), (viewer + "/frames/1?preset=mdc", {})):  # fmt: skip
            r = c.get(url + path, headers=headers)
            assert r.status_code == 404, (path, headers, r.status_code, r.text[:300])
            assert "no pixel data" in r.json()["detail"] and "Pixel Data'" not in r.json()["detail"], r.text


def test_copies_of_an_enhanced_object_and_of_one_without_rescale_come_back_duplicates(served) -> None:
    """The re-audit of the fix: the intercept of an enhanced object moves inside its functional groups
    (with its Real World Value Mapping), and a signed MR without any rescale gets one with Rescale
    Type "US"; both copies were still 409 conflicts."""
    url, _, _, _, others = served
    with httpx.Client(timeout=120) as c:
        for path in others:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            r = c.get(
                url + _base(ds),
                headers={"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={JLS}'},
            )
            assert r.status_code == 200, (path.name, r.text[:300])
            ((_, data),) = _parts(r)
            copy = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            assert copy.PixelRepresentation == 0  # shifted: the description was rewritten
            r = _stow(c, url, data)
            assert r.status_code == 200, (path.name, r.text[:500])
            (ref,) = r.json()["00081199"]["Value"]
            assert ref["00081196"]["Value"] == [0xB000], path.name
