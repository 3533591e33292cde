"""Issue 10 item 7: what the demo shows is labelled honestly (real images)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

import medcodec
from medcodec.cli.main import main

pytestmark = pytest.mark.realdata
HEAD = "ct_head_phantom_philips_ingenuity/0070.dcm"
MR = "mr_head_ge_signa_t1_ctk"


def brain_window_psnr(ref_hu: np.ndarray, test_hu: np.ndarray) -> float:
    """PSNR on the display scale of the brain window (C=40, W=80), PS3.3 C.11.2.1.2.1 written out."""

    def scale(x: np.ndarray) -> np.ndarray:
        return np.clip((x - (40 - 0.5)) / (80 - 1) + 0.5, 0, 1)

    mse = float(np.mean((scale(ref_hu) - scale(test_hu)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def test_demo_head_ct_in_brain_window_and_one_panel_per_depth(shared_data: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    mr = sorted((shared_data / MR).glob("*"))[50]
    out = tmp_path / "demo"
    args = ["demo", "--input", str(shared_data / HEAD), "--input", str(mr), "--qualities", "50,75", "-o", str(out),
            "--no-progress", "--no-delivery"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "PSNR win in the brain window C=40 W=80" in text
    d = json.loads((out / "results.json").read_text())
    head = d["images"]["0070.dcm"]
    assert head["head_ct"] is True and head["reading_window"] == "brain" and head["bits_stored"] == 12
    assert d["images"][mr.name]["bits_stored"] == 16 and d["images"][mr.name]["head_ct"] is False
    # the rate-distortion plot never puts 12- and 16-bit PSNRs on one axis
    assert d["figures"]["rate_distortion.png"]["panels"] == ["12-bit", "16-bit"]

    ds = pydicom.dcmread(shared_data / HEAD)
    pixels = ds.pixel_array.astype(np.uint16)
    for row in (r for r in d["results"] if r["image"] == "0070.dcm" and r["format"] == "mdc"):
        assert row["window"] == {"name": "brain", "center": 40.0, "width": 80.0}
        back = medcodec.decode(medcodec.encode(pixels, bits_stored=12, quality=row["quality"]))
        expected = brain_window_psnr(pixels * 1.0 - 1024, back * 1.0 - 1024)
        assert row["psnr_window_db"] == pytest.approx(expected, abs=0.01)
        assert row["psnr_window_db"] < row["psnr_db"] - 10  # the brain window is far stricter than peak 4095

    for name, fig in d["figures"].items():
        if name.startswith("difference_"):
            row = next(r for r in d["results"] if name == f"difference_{Path(r['image']).stem}.png" and r["quality"] == 75
                       and r["format"] == "mdc")  # fmt: skip
            assert fig["clipped"] == (row["max_abs_error"] > fig["colour_limit"])
            assert fig["clipped"] == (fig["pixels_beyond"] > 0)
    assert d["figures"]["difference_0070.png"]["display_window"] == "brain"


def test_demo_without_pydicom_data_says_what_is_missing(tmp_path: Path) -> None:
    """A real absence: the child sees this environment's site-packages without the pydicom-data
    package (``python -S`` and a folder of links to every other entry)."""
    import pydicom as pd

    import medcodec as pkg

    site = Path(pd.__file__).resolve().parent.parent
    assert (site / "data_store").is_dir(), "pydicom-data is expected in this environment"
    view = tmp_path / "site"
    view.mkdir()
    for entry in site.iterdir():
        if entry.name == "data_store" or entry.name.lower().startswith("pydicom_data"):
            continue
        (view / entry.name).symlink_to(entry)
    src = Path(pkg.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{view}"}
    out = tmp_path / "demo"
    code = "import sys; from medcodec.cli.main import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-S", "-c", code, "demo", "--qualities", "75", "-o", str(out), "--no-progress",
                           "--no-delivery"],
                          capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "note: 3 of 4 sample images are missing: 693_UNCR.dcm" in proc.stderr
    assert "pip install pydicom-data" in proc.stderr and "running on the 1 image(s) found" in proc.stderr
    d = json.loads((out / "results.json").read_text())
    assert list(d["images"]) == ["CT_small.dcm"]
    assert [m["file"] for m in d["missing_samples"]] == ["693_UNCR.dcm", "MR2_UNCR.dcm", "RG3_UNCR.dcm"]


def test_demo_delivers_end_to_end(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``medcodec demo`` (what ``make demo`` runs) goes on to delivery: ingest, a real server on
    127.0.0.1, downloads raw, pre-computed and live over a shaped link, both times printed, the
    viewer named; the server is stopped at the end."""
    import re
    import socket

    chest = sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))[30:33]
    args = ["demo", *[a for p in chest for a in ("--input", str(p))], "--qualities", "75", "-o", str(tmp_path / "out"),
            "--no-progress", "--mbit", "200"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "1. ingest 3 given file(s) into" in text and "3 stored" in text
    times = dict(re.findall(r"^ {3}(original \(raw files\)|diagnostic, pre-computed|diagnostic, compressed live)"
                            r"\s+([\d.]+) s", text, re.M))  # fmt: skip
    assert len(times) == 3 and all(float(t) > 0 for t in times.values())
    faster = re.findall(r"([\d.]+)x faster than raw", text)
    assert len(faster) == 3 and float(faster[1]) > 1.5  # the diagnostic archive is several times smaller
    # the store is OUTPUT/store (a new temporary folder each run left 34 MB behind every time: an
    # outside audit, 2026-12-05), kept for `medcodec serve --store`, and a second run uses it again
    store = tmp_path / "out" / "store"
    assert "/viewer/ in a browser" in text and (store / "catalog.sqlite").is_file()
    assert f"medcodec serve --store {store}" in text
    port = int(re.search(r"--port (\d+)", text).group(1))  # type: ignore[union-attr]
    with socket.socket() as s, pytest.raises(OSError):
        s.settimeout(2)
        s.connect(("127.0.0.1", port))  # stopped
    assert main([*args, "--no-progress"]) == 0
    again = capsys.readouterr().out
    assert f"into {store}" in again and "0 stored, 3 duplicate" in again and "x faster than raw" in again


def test_demo_walks_a_folder_and_checks_delivery_options_first(shared_data: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """``--input FOLDER`` is walked (it failed: read_image takes files); ``--mbit nan`` and a
    ``--store`` that cannot be made stop the demo before the codec part (both came after it)."""
    import shutil

    folder = tmp_path / "in"
    folder.mkdir()
    for p in sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))[40:42]:
        shutil.copy(p, folder / p.name)
    out = tmp_path / "out"
    assert main(["demo", "--input", str(folder), "--qualities", "75", "-o", str(out), "--no-progress",
                 "--no-delivery"]) == 0  # fmt: skip
    assert sorted(json.loads((out / "results.json").read_text())["images"]) == sorted(p.name for p in folder.iterdir())
    capsys.readouterr()
    (tmp_path / "afile").write_bytes(b"")
    for bad, said in ((["--mbit", "nan"], "--mbit"), (["--store", str(tmp_path / "afile" / "store")], "is a file"),
                      (["--store", str(folder)], "holds other files")):  # fmt: skip
        assert main(["demo", "--input", str(folder), "-o", str(tmp_path / "out2"), "--no-progress", *bad]) == 2
        printed = capsys.readouterr()
        assert said in printed.err and "PSNR" not in printed.out and not (tmp_path / "out2").exists()


def test_demo_says_it_leaves_zip_members_out(shared_data: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """A ZIP given to ``--input`` said "no files": the demo reads files and folders (the delivery
    part times downloads against the files' sizes), so it says what it left out and what to do."""
    import zipfile

    ct = sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))[40]
    with zipfile.ZipFile(tmp_path / "study.zip", "w") as z:
        z.write(ct, ct.name)
    assert main(["demo", "--input", str(tmp_path / "study.zip"), "-o", str(tmp_path / "out"), "--no-progress",
                 "--no-delivery"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "1 DICOM file(s) inside ZIP archives are left out" in err and "unzip" in err, err
    assert not (tmp_path / "out").exists()
