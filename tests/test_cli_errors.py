"""Issue 10 item 8: the error convention of the command line, command by command through main().

README: "Usage errors and unreadable streams exit with 2 and print one line starting `error:`".
Each case checks the exit code, that stderr is exactly one line starting ``error:``, and what
that line must name (the CLI option, the folder), and that it names no Python argument.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import medcodec
from medcodec.cli.main import cli_message, main

FUZZ = Path(__file__).resolve().parent / "data" / "fuzz"


@pytest.fixture()
def stream(tmp_path: Path) -> Path:
    path = tmp_path / "base.mdc"
    shutil.copy(FUZZ / "base.u2.b12.f3.mdc", path)
    return path


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "=True" not in err and "Usage:" not in err
    return lines[0]


@pytest.mark.parametrize(
    "options, named",
    [
        (["--ratio", "10", "--psnr", "40"], "--ratio and --psnr"),
        (["--quality", "50", "--ratio", "10"], "--quality and --ratio"),
        (["-q", "50", "--psnr", "40"], "--quality and --psnr"),
    ],
)
def test_encode_two_rate_targets_is_a_usage_error(options: list[str], named: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert main(["encode", str(tmp_path), "-o", str(tmp_path / "x.mdc"), *options]) == 2
    line = one_error_line(capsys)
    assert named in line and "medcodec encode --help" in line


def test_library_refuses_two_rate_targets_too() -> None:
    img = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096
    for fmt in ("mdc", "jpeg"):
        for kw in ({"quality": 50, "ratio": 10}, {"quality": 50, "psnr": 40}, {"ratio": 10, "psnr": 40}):
            with pytest.raises(medcodec.InvalidInputError, match="give one of quality, ratio, psnr"):
                medcodec.encode(img, bits_stored=12, format=fmt, **kw)


@pytest.mark.parametrize("frames", ["5-2", "x", "1-", "-3-1"])
def test_decode_bad_frames_is_a_usage_error(frames: str, stream: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "a.npy"
    assert main(["decode", str(stream), "-o", str(out), "--frames", frames]) == 2
    assert "--frames" in one_error_line(capsys)
    assert not out.exists()


def test_decode_frame_that_does_not_exist(stream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", str(stream), "-o", str(tmp_path / "a.npy"), "--frames", "0,7"]) == 2
    assert "frame 7 does not exist: the stream has 3 frames" in one_error_line(capsys)


def test_existing_output_names_the_cli_option(stream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a.npy"
    out.write_bytes(b"keep")
    assert main(["decode", str(stream), "-o", str(out)]) == 2
    line = one_error_line(capsys)
    assert "exists already" in line and "--overwrite" in line
    assert out.read_bytes() == b"keep"
    assert main(["decode", str(stream), "-o", str(out), "--overwrite"]) == 0
    assert np.load(out).shape == (3, 256, 256)


@pytest.mark.parametrize(
    "argv, named",
    [
        (["decode", "{stream}"], "'-o' / '--output'"),                 # missing option
        (["decode", "{stream}", "-o", "{tmp}/a.npy", "--bogus"], "--bogus"),  # unknown option
        (["decode", "{tmp}/missing.mdc", "-o", "{tmp}/a.npy"], "missing.mdc"),  # input does not exist
        (["decode", "{stream}", "-o", "{tmp}/a.npy", "--to", "tiff"], "tiff"),
        (["encode", "{tmp}/nothing-here", "-o", "{tmp}/x.mdc", "--no-progress"], "no readable DICOM"),
        (["info"], "STREAM"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_usage_errors_are_one_line_exit_2(argv: list[str], named: str, stream: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    args = [a.format(stream=stream, tmp=tmp_path) for a in argv]
    assert main(args) == 2
    assert named in one_error_line(capsys)


@pytest.mark.parametrize("damage", ["empty", "text", "bad_crc", "not_a_stream"])
def test_unreadable_streams_are_one_line_exit_2(damage: str, stream: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = stream.read_bytes()
    stream.write_bytes({"empty": b"", "text": b"hello\n", "bad_crc": data[:100] + bytes([data[100] ^ 1]) + data[101:],
                        "not_a_stream": bytes(100)}[damage])  # fmt: skip
    for cmd in (["info", str(stream)], ["decode", str(stream), "-o", str(stream.with_suffix(".npy"))]):
        assert main(cmd) == 2
        one_error_line(capsys)


def test_cli_message_translates_python_arguments() -> None:
    assert cli_message("x: exists already (pass overwrite=True to replace it)") == "x: exists already (pass --overwrite to replace it)"
    assert cli_message("quality=500 is out of range") == "--quality 500 is out of range"
    assert cli_message("spec says 12 bits signed=True") == "spec says 12 bits signed=True"  # not an option
    assert cli_message("two\nlines") == "two lines"


# --- an output folder nobody may write in ------------------------------------------------


@pytest.fixture()
def readonly_place(tmp_path: Path) -> Iterator[Path]:
    """A stream and a read-only folder ``ro/`` beside it."""
    shutil.copy(FUZZ / "base.u2.b12.f3.mdc", tmp_path / "base.mdc")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    yield tmp_path
    (tmp_path / "ro").chmod(0o755)


def run_unprivileged(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process that file permissions apply to. Root may write anywhere, so
    as root the child runs without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (util-linux setpriv)."""
    cmd = [sys.executable, "-c", "import sys; from medcodec.cli.main import main; sys.exit(main(sys.argv[1:]))", *argv]
    if os.getuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("running as root: setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE for this test")
        caps = "-dac_override,-dac_read_search"
        cmd = [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "argv, folder",
    [
        (["decode", "{root}/base.mdc", "-o", "{root}/ro/a.npy"], "{root}/ro"),
        (["decode", "{root}/base.mdc", "-o", "{root}/ro/png", "--to", "png"], "{root}/ro/png"),
        (["decode", "{root}/base.mdc", "-o", "{root}/ro", "--to", "png"], "{root}/ro"),
    ],
)
def test_readonly_output_folder_is_an_output_error_naming_it(argv: list[str], folder: str, readonly_place: Path) -> None:
    proc = run_unprivileged([a.format(root=readonly_place) for a in argv])
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {folder.format(root=readonly_place)}: cannot write in this")
    assert ".part" not in lines[0] and "input" not in lines[0]
    assert os.listdir(readonly_place / "ro") == []


@pytest.fixture(scope="module")
def ct_slices(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten slices of the real head phantom CT."""
    folder = tmp_path_factory.mktemp("ct")
    src = shared_data / "ct_head_phantom_philips_ingenuity"
    for name in sorted(p.name for p in src.glob("*.dcm"))[60:70]:
        shutil.copy(src / name, folder / name)
    return folder


@pytest.mark.realdata
@pytest.mark.parametrize(
    "output, extra",
    [("ro/ct.mdc", []), ("ro/out", []), ("ro/out", ["--to", "dicom-jpeg"]), ("ro", ["--to", "dicom-j2k"])],
)
def test_encode_into_readonly_folder_stops_with_an_output_error(output: str, extra: list[str], ct_slices: Path,
                                                                readonly_place: Path) -> None:  # fmt: skip
    proc = run_unprivileged(["encode", str(ct_slices), "-o", str(readonly_place / output), "--no-progress", *extra])
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    folder = readonly_place / ("ro" if output.endswith(".mdc") else output)
    assert lines[0].startswith(f"error: {folder}: cannot write in this"), lines[0]
    assert "failed" not in proc.stderr and ".part" not in proc.stderr
    assert os.listdir(readonly_place / "ro") == []


@pytest.mark.realdata
def test_truncated_real_ct_stream_gives_its_first_frames(ct_slices: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    full = tmp_path / "ct.mdc"
    assert main(["encode", str(ct_slices), "-o", str(full), "--no-progress"]) == 0
    data = full.read_bytes()
    cut = tmp_path / "cut.mdc"
    cut.write_bytes(data[: len(data) * 8 // 10])
    _, index = medcodec.codec.container.parse_container(data)
    intact = [k for k, (off, size) in enumerate(index) if off + size <= len(data) * 8 // 10]
    assert len(intact) >= 6  # 10 frames, a 80% cut, a few kB of headers in front
    np.testing.assert_array_equal(medcodec.decode(cut.read_bytes(), frames=[0, 1, 2]), medcodec.decode(data, frames=[0, 1, 2]))
    capsys.readouterr()
    assert main(["decode", str(cut), "-o", str(tmp_path / "first.npy"), "--frames", f"0-{intact[-1]}"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "first.npy"), medcodec.decode(data, frames=intact))
    assert main(["decode", str(cut), "-o", str(tmp_path / "all.npy")]) == 2
    line = one_error_line(capsys)
    missing = intact[-1] + 1
    assert line.startswith(f"error: FRAM {missing} at byte offset {index[missing][0]}: frame {missing} is cut off")
    assert f"frames 0-{intact[-1]} are intact" in line
