"""Originals stored lossy-compressed already, through the running server (2026-12-01).

A JPEG ultrasound, a lossy JPEG 2000 MR, a near-lossless JPEG-LS CT: the presets used to decode
and code them again, a second lossy generation whose file was often larger (the MR's 114 kB JPEG
2000 became a 309 kB diagnostic JPEG, the ultrasound 84 -> 94 kB) and whose manifest gave only the
second generation's error. Now ``lossless`` and ``diagnostic`` deliver them as stored, labelled
lossy with the reason; a WADO-RS client that asks for a syntax still gets it (coded for it); the
``original`` preset's manifest says which of its files are lossy.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from conftest import start_server, stop_server

LOSSY = {  # key -> file of ../shared/data/singles
    "jpegls_near": "ct_CT1_512x512_signed16_jpegls_near_lossless.dcm",
    "j2k_lossy": "mr_MR2_1024x1024_12bit_j2k_lossy.dcm",
    "us_jpeg": "us_576x768_ybr_jpeg_extended.dcm",
}
LOSSLESS = "mr_384x384_12bit_unsigned.dcm"
JPEG_51 = "1.2.840.10008.1.2.4.51"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"


@pytest.fixture(scope="module")
def served(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    from medcodec.delivery import open_store

    root = tmp_path_factory.mktemp("lossy")
    folder = root / "in"
    folder.mkdir()
    paths = {key: shared_data / "singles" / name for key, name in {**LOSSY, "plain": LOSSLESS}.items()}
    paths["sc_jpeg"] = Path(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))  # colour, baseline JPEG, flagged 01
    for path in paths.values():
        shutil.copy(path, folder / path.name)
    with open_store(root / "store") as store:
        report = store.ingest([folder / p.name for p in paths.values()])
        assert report.ok, report.summary()
    records = {}
    for key, path in paths.items():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        records[key] = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
    proc, url, _log = start_server(root / "store")
    try:
        yield url, records, paths
    finally:
        stop_server(proc)


def _manifest(body: bytes) -> tuple[zipfile.ZipFile, list[dict]]:
    archive = zipfile.ZipFile(io.BytesIO(body))
    return archive, json.loads(archive.read("manifest.json"))["files"]


@pytest.mark.realdata
@pytest.mark.parametrize("live", [False, True])
def test_archives_deliver_lossy_originals_as_stored_and_say_so(served, live: bool) -> None:
    url, records, paths = served
    with httpx.Client(timeout=120) as c:
        for key, (study, _, _) in records.items():
            for preset in ("original", "lossless", "diagnostic"):
                r = c.get(f"{url}/studies/{study}/archive.zip", params={"preset": preset, "live": int(live)})
                assert r.status_code == 200, (key, preset, r.text[:300])
                archive, files = _manifest(r.content)
                (entry,) = files
                member = archive.read(entry["file"])
                if key == "plain":  # an uncompressed lossless original: coded, lossy only by diagnostic
                    assert entry["lossy"] == (preset == "diagnostic")
                    continue
                assert member == paths[key].read_bytes(), (key, preset)
                assert entry["passthrough"] and entry["lossy"] and entry["psnr"] is None, (key, preset, entry)
                if preset != "original":
                    assert entry["reason"].startswith("already lossy-compressed ("), entry


@pytest.mark.realdata
def test_wado_rs_codes_a_lossy_original_for_a_client_that_asks_for_a_syntax(served) -> None:
    url, records, paths = served
    study, series, sop = records["j2k_lossy"]
    source = pydicom.dcmread(paths["j2k_lossy"])
    inst = f"{url}/dicomweb/studies/{study}/series/{series}/instances/{sop}"
    with httpx.Client(timeout=120) as c:
        for syntax in (JPEG_51, HTJ2K_LOSSLESS):
            r = c.get(inst, headers={"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={syntax}'})
            assert r.status_code == 200, (syntax, r.text[:300])
            body = r.content
            start = body.index(b"DICM") - 128
            ds = pydicom.dcmread(io.BytesIO(body[start:]))
            assert ds.file_meta.TransferSyntaxUID == syntax
            assert ds.LossyImageCompression == "01"  # lossy from the start, whatever this generation is
            assert ds.pixel_array.shape == source.pixel_array.shape
            if syntax == HTJ2K_LOSSLESS:  # bit-exact to the stored (lossy) values
                assert (ds.pixel_array == source.pixel_array).all()
        # as stored: the file itself
        r = c.get(inst, headers={"Accept": "application/dicom; transfer-syntax=*"})
        assert r.status_code == 200 and r.content == paths["j2k_lossy"].read_bytes()
        # a colour JPEG: JPEG 2000 asked for gives a lossless copy of its decoded values, still lossy;
        # RLE, which colour is not coded in, a 406 saying so (it said "a lossless copy would only be
        # larger" until 2026-12-02, contradicting the .90 answer)
        study, series, sop = records["sc_jpeg"]
        colour = pydicom.dcmread(paths["sc_jpeg"])
        inst = f"{url}/dicomweb/studies/{study}/series/{series}/instances/{sop}"
        r = c.get(inst, headers={"Accept": "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.90"})
        assert r.status_code == 200, r.text[:300]
        ds = pydicom.dcmread(io.BytesIO(r.content))
        assert ds.LossyImageCompression == "01" and (ds.pixel_array == colour.pixel_array).all()
        r = c.get(inst, headers={"Accept": "application/dicom; transfer-syntax=1.2.840.10008.1.2.5"})
        assert r.status_code == 406 and "colour images are coded in" in r.json()["detail"], r.text[:300]


def _parts(r: httpx.Response) -> list[tuple[str, bytes]]:
    """(Content-Type, body) of each part of a multipart/related answer."""
    boundary = r.headers["content-type"].split("boundary=")[1].split(";")[0].strip('"').encode()
    out = []
    for chunk in r.content.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, body = chunk.partition(b"\r\n\r\n")
        kind = next(line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-type"))  # fmt: skip
        out.append((kind, body.removesuffix(b"\r\n")))
    return out


@pytest.mark.realdata
def test_a_lossy_colour_original_asked_for_a_syntax_it_cannot_take_comes_as_stored(served) -> None:
    """A baseline JPEG colour SC asked as .51: its stored frames relabelled SOF1 (was a 406 until
    2026-12-02), never a second-generation JPEG, for the instance and as the series' part; asked
    for as RLE under a lossy preset, which does not code colour in it, 406; asked as .50, the
    stored file (it is .50 already)."""
    url, records, paths = served
    study, series, sop = records["sc_jpeg"]
    stored = paths["sc_jpeg"].read_bytes()
    original = pydicom.dcmread(paths["sc_jpeg"])
    multipart = 'multipart/related; type="application/dicom"; transfer-syntax='
    with httpx.Client(timeout=120) as c:
        inst = f"{url}/dicomweb/studies/{study}/series/{series}/instances/{sop}"
        for where in (inst, f"{url}/dicomweb/studies/{study}/series/{series}"):
            r = c.get(where, headers={"Accept": multipart + JPEG_51})
            assert r.status_code == 200, r.text[:300]
            ((kind, body),) = _parts(r)
            ds = pydicom.dcmread(io.BytesIO(body))
            assert JPEG_51 in kind and ds.file_meta.TransferSyntaxUID == JPEG_51
            changed = np.frombuffer(ds.PixelData, np.uint8) != np.frombuffer(original.PixelData, np.uint8)
            assert changed.sum() == 1  # the SOF marker: the stored frames, not coded again
        rle = "1.2.840.10008.1.2.5"
        r = c.get(inst + "?preset=diagnostic", headers={"Accept": multipart + rle})
        assert r.status_code == 406 and "Traceback" not in r.text
        r = c.get(inst, headers={"Accept": multipart + "1.2.840.10008.1.2.4.50"})
        assert r.status_code == 200 and _parts(r)[0][1] == stored



@pytest.mark.realdata
def test_our_own_copy_sent_back_over_stow_is_a_duplicate_retrievable_through_its_original(shared_data: Path,
                                                                                          tmp_path: Path,
                                                                                          spawn_server) -> None:  # fmt: skip
    """Orthanc forwarded medcodec's own .51 copies back over STOW-RS: each was stored beside its
    original (every answer of the study then held the image twice), and once that was fixed the
    STOW answer's RetrieveURL named the copy's own UIDs, a 404 (outside audits, 2026-12-05). Now:
    a warning item (0xB000), the study unchanged, and a RetrieveURL that answers."""
    from medcodec.delivery import open_store
    from medcodec.delivery.presets import PRESETS
    from medcodec.testing.server import stow_body

    files = sorted((shared_data / "mr_head_ge_signa_t1_ctk").glob("*.dcm"))[:2]
    with open_store(tmp_path / "store") as store:
        study = store.ingest(files, precompress=False).studies[0]
        series = pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID
        copy = PRESETS["diagnostic"].encode_instance(files[0].read_bytes(),
                                                     mapping=store.series_mapping(series, "diagnostic"))  # fmt: skip
    _, url, _ = spawn_server(tmp_path / "store")
    body, ct = stow_body(copy.data)
    r = httpx.post(f"{url}/dicomweb/studies", content=body, headers={"Content-Type": ct, "Accept": "application/dicom+json"},
                   timeout=60)  # fmt: skip
    assert r.status_code == 200, r.text
    item = r.json()["00081199"]["Value"][0]
    assert item["00081196"]["Value"] == [0xB000]
    assert item["00081155"]["Value"] == [pydicom.dcmread(io.BytesIO(copy.data)).SOPInstanceUID]
    got = httpx.get(item["00081190"]["Value"][0], headers={"Accept": "application/dicom; transfer-syntax=*"}, timeout=60)
    assert got.status_code == 200 and pydicom.dcmread(io.BytesIO(got.content)).SOPInstanceUID == pydicom.dcmread(
        files[0], stop_before_pixels=True).SOPInstanceUID  # fmt: skip
    assert len(httpx.get(f"{url}/dicomweb/studies/{study}/instances", timeout=60).json()) == 2
