"""``medcodec ingest`` through ``main([...])`` on real series."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from delivery_data import BAD_UID, CHEST, CONFLICT_A, CONFLICT_B, US_RGB, series_files

from medcodec.cli.main import main
from medcodec.delivery import open_store


@pytest.mark.realdata
def test_cli_ingest_precomputes_and_reports(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_path = tmp_path / "store"
    files = [str(p) for p in series_files(shared_data, CHEST, 6)] + [str(shared_data / US_RGB)]
    code = main(["ingest", *files, "--store", str(store_path), "--presets", "diagnostic,lossless", "--no-progress"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "7 stored, 0 duplicate, 0 conflict, 0 rejected; 2 studies" in out.out
    assert "1 colour (JPEG under diagnostic and preview, HTJ2K lossless under lossless)" in out.out
    assert "passthrough" not in out.out
    with open_store(store_path, create=False) as store:
        studies = store.catalog.study_uids()
        assert len(studies) == 2
        for study in studies:
            for preset in ("diagnostic", "lossless"):
                archive = store.archive(study, None, preset)
                assert archive is not None
                with store.open_archive(archive) as fh:
                    zf = zipfile.ZipFile(io.BytesIO(fh.read()))
                manifest = json.loads(zf.read("manifest.json"))
                assert manifest["totals"]["files"] == len(store.instances(study)) == len(zf.namelist()) - 1
            assert store.archive(study, None, "preview") is None  # not asked for

    # again: every file a duplicate, nothing written; exit 0
    code = main(["ingest", *files, "--store", str(store_path), "--no-progress", "--no-precompress"])
    assert code == 0 and "0 stored, 7 duplicate" in capsys.readouterr().out
    # --refresh alone: computes what is missing (preview was never asked for), nothing else
    assert main(["ingest", "--store", str(store_path), "--refresh", "--presets", "preview", "--no-progress"]) == 0
    assert "refreshed 4 archive(s)" in capsys.readouterr().out
    assert main(["ingest", "--store", str(store_path), "--refresh", "--presets", "preview", "--no-progress"]) == 0
    assert "refreshed 0 archive(s)" in capsys.readouterr().out
    assert main(["ingest", "--store", str(store_path)]) == 2  # nothing to do: usage error


@pytest.mark.realdata
def test_cli_ingest_exit_codes(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_path = str(tmp_path / "store")
    code = main(["ingest", str(shared_data / CONFLICT_A), str(shared_data / CONFLICT_B), str(shared_data / BAD_UID),
                 "--store", store_path, "--no-precompress", "--no-progress"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 1
    assert "conflict:" in out.err and CONFLICT_B.split("/")[-1] in out.err and "rejected:" in out.err
    assert "Traceback" not in out.err
    # fatal errors: one line, exit 2
    assert main(["ingest", str(tmp_path / "missing"), "--store", store_path, "--no-progress"]) == 2
    assert main(["ingest", str(shared_data / US_RGB), "--store", store_path, "--presets", "ultra"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 2 and "ultra" in err and "Traceback" not in err


@pytest.mark.realdata
def test_cli_ingest_terminated_leaves_no_partial_objects(shared_data: Path, tmp_path: Path) -> None:
    """SIGTERM (kill, timeout, CI cancellation) during pre-computation takes Ctrl-C's path: the
    store's tmp/*.part are removed, exit 143, and the store stays consistent."""
    store_path = tmp_path / "store"
    files = [str(p) for p in series_files(shared_data, CHEST, 40)]
    cmd = [sys.executable, "-m", "medcodec.cli.main", "ingest", *files, "--store", str(store_path), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not (store_path / "renditions").exists():  # originals stored, presets being computed
            assert proc.poll() is None, f"ended ({proc.returncode}) before it could be signalled"
            time.sleep(0.002)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143 and err.splitlines()[-1] == "error: terminated (SIGTERM)", err
    assert list((store_path / "tmp").iterdir()) == []
    with open_store(store_path, create=False) as store:
        assert store.check().consistent


def test_names_a_terminal_cannot_show_are_escaped_not_an_error(tmp_path: Path) -> None:
    """``ingest -v`` of a file named in Cyrillic and ``store list`` of its Cyrillic patient name on a
    Latin-1 terminal: exit 0, the characters written as escapes. Until 2026-12-02 both ended with
    "internal error", exit 3, after the work was done (an outside audit)."""
    import os
    import shutil

    from pydicom.data import get_charset_files

    source = tmp_path / "Люксембург.dcm"
    shutil.copyfile(get_charset_files("chrRuss.dcm")[0], source)  # patient Люкceмбypг
    env = {**os.environ, "PYTHONIOENCODING": "latin-1"}
    store = tmp_path / "store"
    run = lambda *args: subprocess.run([sys.executable, "-m", "medcodec", *args], env=env,  # noqa: E731
                                       capture_output=True, timeout=300)  # fmt: skip
    done = run("ingest", "-v", str(source), "--store", str(store), "--no-precompress", "--no-progress")
    assert done.returncode == 0, done.stderr.decode("latin-1")
    assert b"\\u041b\\u044e\\u043a" in done.stdout + done.stderr
    listed = run("store", "list", "--store", str(store))
    assert listed.returncode == 0, listed.stderr.decode("latin-1")
    assert b"SCSRUSS \\u041b\\u044e\\u043a" in listed.stdout, listed.stdout


def test_text_its_character_set_cannot_give_is_named_once_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown Specific Character Set term and Latin-1 bytes under ISO_IR 192: one warning line
    each, naming the file; pydicom's own warning text once a run, not once per element read (it
    was printed four times for each file, naming none; an outside audit, 2026-12-02)."""
    import pydicom
    from pydicom.data import get_testdata_file

    names = []
    for name, charset in (("unknown.dcm", b"ISO_IR 999"), ("mismatch.dcm", b"ISO_IR 192")):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName = "Müller^Jürgen"
        ds.SOPInstanceUID = ds.SOPInstanceUID + (".1" if name.startswith("u") else ".2")
        ds.StudyInstanceUID = ds.StudyInstanceUID + (".1" if name.startswith("u") else ".2")
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        (tmp_path / name).write_bytes(buf.getvalue().replace(b"ISO_IR 100", charset))
        names.append(str(tmp_path / name))
    code = main(["ingest", *names, "--store", str(tmp_path / "store"), "--no-precompress", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("unknown.dcm: Specific Character Set 'ISO_IR 999' is not a defined term") == 1, err
    assert err.count("mismatch.dcm: PatientName not valid in the declared character set") == 1, err
    lines = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(lines) == len(set(lines)), err


def test_a_warning_is_printed_once_by_the_command(shared_data: Path, tmp_path: Path) -> None:
    """Run as a user runs it (a process of its own: no handler on the root logger, so Python's
    last-resort handler prints what a library logs): the 'another patient' warning came twice,
    once logged for the server and once as the file's outcome (an outside audit, 2026-12-03)."""
    import pydicom

    first, second = series_files(shared_data, CHEST, 2)
    ds = pydicom.dcmread(second)
    ds.PatientID = "SOMEONE-ELSE"
    ds.save_as(tmp_path / "other.dcm")
    run = subprocess.run([sys.executable, "-m", "medcodec.cli.main", "ingest", str(first), str(tmp_path / "other.dcm"),
                          "--store", str(tmp_path / "store"), "--no-precompress", "--no-progress"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("this instance has Patient ID 'SOMEONE-ELSE'") == 1, run.stderr
