"""Odd but real files through the running server (found by an outside-in sweep on 2026-12-01):
every route answers them with a 2xx or a clear JSON 4xx, never a 5xx or a Python traceback.

From pydicom's and pydicom-data's test sets: a Deflated Explicit VR Little Endian image (it was
passed through uncoded: its pixels could not be read), a palette-colour image without PS3.10
header (the viewer's frame API answered 500), an RGB JPEG whose pixel data is truncated (a
WADO-RS error carried pydicom's traceback text), a 32-bit RT dose, and an Explicit VR Big Endian
RT plan without PS3.10 header, a Big Endian MR (its default, Explicit VR Little Endian, answer
was a 406: pydicom will not change a dataset's byte order on save).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from conftest import start_server, stop_server

FILES = {
    "deflated": "image_dfl.dcm",
    "palette": "OT-PAL-8-face.dcm",
    "implicit_in_jpeg": "SC_rgb_jpeg.dcm",  # a JPEG syntax, an implicit VR data set
    "rtdose32": "rtdose.dcm",
    "bigendian_nometa": "ExplVR_BigEndNoMeta.dcm",
    "bigendian_mr": "MR_small_bigendian.dcm",
    "seg1bit": "liver_1frame.dcm",
    "j2k_nm": "JPEG2000.dcm",
}


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory):
    from medcodec.delivery import open_store

    root = tmp_path_factory.mktemp("odd")
    paths = {key: Path(get_testdata_file(name)) for key, name in FILES.items()}
    with open_store(root / "store") as store:
        report = store.ingest(list(paths.values()), presets=("diagnostic", "preview"))
        records = {key: outcome.record for key, outcome in zip(paths, report.outcomes)}
    assert all(r is not None for r in records.values()), report.summary()
    proc, url, _log = start_server(root / "store")
    try:
        yield url, records, paths, root / "store"
    finally:
        stop_server(proc)


def _check_answer(r: httpx.Response, what: str) -> None:
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        body = r.json()  # errors are JSON
        assert "Traceback" not in body["detail"] and 'File "' not in body["detail"], f"{what}: {body}"


def test_every_route_answers_odd_files_without_5xx_or_traceback(odd) -> None:
    """... and the server's log holds no traceback either: pydicom's, logged for each decoder
    that fails on the JPEG 2000 NM before the next is tried, is one WARNING line there."""
    url, records, _, store = odd
    accepts = ['multipart/related; type="application/dicom"', 'multipart/related; type="application/dicom"; transfer-syntax=*',
               'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.51']  # fmt: skip
    with httpx.Client(timeout=60) as c:
        for key, rec in records.items():
            inst = f"/dicomweb/studies/{rec.study_uid}/series/{rec.series_uid}/instances/{rec.sop_uid}"
            for accept in accepts:
                _check_answer(c.get(url + inst, headers={"Accept": accept}), f"{key} {accept}")
            for path in (inst + "/metadata", inst + "/rendered", inst + "/frames/1", inst + "/thumbnail",
                         f"/viewer/api/studies/{rec.study_uid}/series/{rec.series_uid}/instances/{rec.sop_uid}/frames/1",
                         f"/studies/{rec.study_uid}/archive.zip?preset=diagnostic",
                         f"/studies/{rec.study_uid}/archive.zip?preset=preview&live=1",
                         f"/wado?requestType=WADO&studyUID={rec.study_uid}&seriesUID={rec.series_uid}"
                         f"&objectUID={rec.sop_uid}&contentType=application/dicom"):  # fmt: skip
                _check_answer(c.get(url + path), f"{key} {path}")
    (log,) = [p for p in store.parent.glob("server-*.log") if url.endswith(p.stem.split("-")[1])]
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]


def test_viewer_frame_of_palette_colour_is_406_and_rendered_works(odd) -> None:
    url, records, _, _ = odd
    rec = records["palette"]
    r = httpx.get(f"{url}/viewer/api/studies/{rec.study_uid}/series/{rec.series_uid}/instances/{rec.sop_uid}/frames/1")
    assert r.status_code == 406 and "use /rendered" in r.json()["detail"]  # the page falls back to /rendered
    inst = f"/dicomweb/studies/{rec.study_uid}/series/{rec.series_uid}/instances/{rec.sop_uid}"
    r = httpx.get(url + inst + "/rendered", headers={"Accept": "image/png"}, timeout=60)
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")


def test_viewer_mdc_frame_of_uncodable_pixels_is_406(odd) -> None:
    """``?preset=mdc`` codes the original now: palette colour, 32-bit and 1-bit pixels (and pixels
    no decoder here reads) are a 406 as for every other preset, not a 500 (HTTP audit, 2026-12-01)."""
    url, records, _, _ = odd
    for key in ("palette", "rtdose32", "seg1bit", "j2k_nm"):
        rec = records[key]
        frame = f"/viewer/api/studies/{rec.study_uid}/series/{rec.series_uid}/instances/{rec.sop_uid}/frames/1"
        for preset in ("original", "mdc"):
            r = httpx.get(url + frame, params={"preset": preset}, timeout=60)
            if key == "j2k_nm" and r.status_code == 200:
                continue  # its pixels decode here: nothing to refuse
            assert r.status_code == 406, (key, preset, r.status_code, r.text[:300])
            assert "use /rendered" in r.json()["detail"] and "Traceback" not in r.text


def test_without_traceback_cuts_and_bounds() -> None:
    from medcodec.errors import without_traceback

    text = 'bad value\nTraceback (most recent call last):\n  File "x.py", line 1'
    assert without_traceback(text) == "bad value"
    assert without_traceback("plain message ") == "plain message"
    assert len(without_traceback("x" * 5000, 300)) == 300


def test_deflated_image_is_readable_and_coded_when_asked(odd) -> None:
    """Its pixels are read (it was passed through as unreadable once); the diagnostic archive
    delivers it as stored since its 4.6 kB are smaller than the JPEG would be (and exact); a
    WADO-RS client asking for the preset's syntax (.50: 8 bits) gets the JPEG."""
    url, records, paths, _ = odd
    rec = records["deflated"]
    assert rec.compressible and not rec.passthrough_reason
    r = httpx.get(f"{url}/studies/{rec.study_uid}/archive.zip?preset=diagnostic", timeout=60)
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        entry = json.loads(zf.read("manifest.json"))["files"][0]
        member = zf.read(entry["file"])
    assert entry["passthrough"] and not entry["lossy"] and entry["reason"].startswith("the stored file is smaller")
    assert member == paths["deflated"].read_bytes()
    inst = f"{url}/dicomweb/studies/{rec.study_uid}/series/{rec.series_uid}/instances/{rec.sop_uid}"
    r = httpx.get(inst, headers={"Accept": "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50"}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    ds = pydicom.dcmread(io.BytesIO(r.content))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"  # 8-bit: baseline
    assert ds.LossyImageCompression == "01"
    source = pydicom.dcmread(paths["deflated"]).pixel_array
    assert ds.pixel_array.shape == source.shape


def test_big_endian_file_without_header_goes_out_as_part10_with_its_syntax(odd) -> None:
    url, records, _, _ = odd
    rec = records["bigendian_nometa"]
    assert rec.transfer_syntax_uid == "1.2.840.10008.1.2.2"
    inst = f"/dicomweb/studies/{rec.study_uid}/series/{rec.series_uid}/instances/{rec.sop_uid}"
    r = httpx.get(url + inst, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
                  timeout=60)  # fmt: skip
    assert r.status_code == 200 and "1.2.840.10008.1.2.2" in r.headers["content-type"] + r.text[:400]
    part = r.content[r.content.index(b"\r\n\r\n") + 4 :]
    assert part[128:132] == b"DICM"
    ds = pydicom.dcmread(io.BytesIO(part[: part.rindex(b"\r\n--")]))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.2" and ds.SOPInstanceUID == rec.sop_uid


def test_big_endian_image_goes_out_as_explicit_little_endian_by_default(odd) -> None:
    url, records, paths, _ = odd
    rec = records["bigendian_mr"]
    inst = f"/dicomweb/studies/{rec.study_uid}/series/{rec.series_uid}/instances/{rec.sop_uid}"
    r = httpx.get(url + inst, headers={"Accept": 'multipart/related; type="application/dicom"'}, timeout=60)
    assert r.status_code == 200
    part = r.content[r.content.index(b"\r\n\r\n") + 4 :]
    ds = pydicom.dcmread(io.BytesIO(part[: part.rindex(b"\r\n--")]))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert (ds.pixel_array == pydicom.dcmread(paths["bigendian_mr"]).pixel_array).all()


@pytest.mark.parametrize(
    "name", ["MR_small_bigendian.dcm", "emri_small_big_endian.dcm", "SC_rgb_expb_32bit_2frame.dcm", "OBXXXX1A_expb.dcm",
             "liver_expb.dcm", "rtdose_expb.dcm", "ExplVR_BigEndNoMeta.dcm"],
)  # fmt: skip
def test_big_endian_to_explicit_little_endian_keeps_every_value(name: str) -> None:
    """Samples (16/32-bit, colour, palette, 1-bit, multi-frame) and the binary words pydicom keeps
    raw (a palette's OW LUT data) come out in little endian with the same values."""
    import numpy as np

    from medcodec.delivery.live import _to_explicit_le

    path = get_testdata_file(name)
    source = pydicom.dcmread(path, force=True)
    out = pydicom.dcmread(io.BytesIO(_to_explicit_le(Path(path).read_bytes())))
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    if "PixelData" in source:
        np.testing.assert_array_equal(out.pixel_array, source.pixel_array)
    for element in source:
        if element.tag.group == 2 or element.tag == 0x7FE00010:
            continue
        mine = out[element.tag]
        if element.VR == "OW" and element.value:
            n = len(element.value) // 2
            assert np.array_equal(np.frombuffer(element.value, ">u2", n), np.frombuffer(mine.value, "<u2", n))
        elif element.VR != "SQ":
            assert mine.value == element.value, element.tag


@pytest.mark.realdata
def test_decompressed_for_a_client_it_is_the_same_instance_and_says_whether_it_is_lossy(shared_data, tmp_path) -> None:
    """Compressed originals sent as Explicit VR Little Endian (WADO-RS' default, C-GET/C-MOVE to a
    peer that takes only that) keep their SOP Instance UID: pydicom's decompress() makes a new one
    unless told not to, and receivers then held two copies. A JPEG-LS NEAR > 0 frame whose header
    omits (0028,2110) says lossy once decompressed: the method and the stored ratio added."""
    from medcodec.delivery.live import _to_explicit_le

    for name in ("MR_small_jp2klossless.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm", "MR_small_RLE.dcm"):
        path = get_testdata_file(name)
        source = pydicom.dcmread(path)
        out = pydicom.dcmread(io.BytesIO(_to_explicit_le(Path(path).read_bytes())))
        assert out.SOPInstanceUID == source.SOPInstanceUID, name
        assert out.file_meta.MediaStorageSOPInstanceUID == source.SOPInstanceUID, name
    near = pydicom.dcmread(shared_data / "singles/ct_CT1_512x512_signed16_jpegls_near_lossless.dcm")
    for keyword in ("LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod"):
        if keyword in near:
            delattr(near, keyword)
    flagless = tmp_path / "flagless.dcm"
    near.save_as(flagless, enforce_file_format=True)
    out = pydicom.dcmread(io.BytesIO(_to_explicit_le(flagless.read_bytes())))
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1" and out.LossyImageCompression == "01"
    assert out.LossyImageCompressionMethod == "ISO_14495_1" and 2 < float(out.LossyImageCompressionRatio) < 20
    plain = pydicom.dcmread(io.BytesIO(_to_explicit_le(Path(get_testdata_file("MR_small_jp2klossless.dcm")).read_bytes())))
    assert "LossyImageCompression" not in plain or plain.LossyImageCompression == "00"


def test_a_data_set_implicit_under_an_explicit_syntax_goes_out_as_explicit_vr_le() -> None:
    """pydicom's SC_rgb_jpeg.dcm says JPEG baseline (explicit VR) but its data set is implicit VR:
    the default WADO-RS syntax (Explicit VR LE) was a 406 with pydicom's "encoding without a string
    argument" until 2026-12-02 (elements not yet read had no VR for the explicit writer)."""
    from medcodec.delivery.live import _to_explicit_le

    path = Path(get_testdata_file("SC_rgb_jpeg.dcm"))
    with pytest.warns(UserWarning, match="implicit VR"):
        source = pydicom.dcmread(path)
        out = pydicom.dcmread(io.BytesIO(_to_explicit_le(path.read_bytes())))
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1" and out["ImageType"].VR == "CS"
    assert np.array_equal(out.pixel_array, source.pixel_array) and out.LossyImageCompression == "01"


def test_an_image_no_decoder_reads_leaves_no_traceback_in_the_log(tmp_path, spawn_server) -> None:
    """pydicom logs each pixel decoder that fails, with its traceback, at ERROR: every live archive
    of a study with pydicom's undecodable JPEG 2000 (a header that claims 3.8e12 pixels) put two
    tracebacks in the server's log although the answer was right (HTTP audit, 2026-12-01). One
    WARNING line each now; ``--log-level debug`` keeps them whole."""
    from medcodec.delivery import open_store

    path = Path(get_testdata_file("JPEG2000-embedded-sequence-delimiter.dcm"))
    with open_store(tmp_path / "store") as store:
        record = store.ingest([path], precompress=False).outcomes[0].record
    _proc, url, log = spawn_server(tmp_path / "store")
    r = httpx.get(f"{url}/studies/{record.study_uid}/archive.zip?preset=preview&live=1", timeout=60)
    assert r.status_code == 200
    # its default WADO-RS answer (Explicit VR LE) needs the pixels decoded: a 406 that keeps pydicom's
    # words, not its traceback (the error mapping of every route; until 2026-12-02 this was checked on
    # SC_rgb_jpeg.dcm, whose answer failed then and is right now)
    inst = f"/dicomweb/studies/{record.study_uid}/series/{record.series_uid}/instances/{record.sop_uid}"
    r = httpx.get(url + inst, headers={"Accept": 'multipart/related; type="application/dicom"'}, timeout=60)
    detail = r.json()["detail"]
    assert r.status_code == 406 and "Unable to decode" in detail and "Traceback" not in detail and 'File "' not in detail
    text = log.read_text()
    assert "Traceback" not in text and "WARNING pydicom.pixels.decoders.base" in text, text[-3000:]
