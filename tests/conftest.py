"""Shared pytest fixtures.

``shared_data``: the real DICOM set described in ``../shared/data/README.md``. Tests that use
it are marked ``@pytest.mark.realdata``. Without the data they skip locally and fail in CI
(``CI`` or ``MEDCODEC_REQUIRE_DATA`` set), so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from medcodec.testing.tools import require_tool  # noqa: F401  (re-exported for old imports)

_DEFAULT_SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared real-data folder (env ``MEDCODEC_DATA``, default ``<repo>/../shared/data``)."""
    path = Path(os.environ.get("MEDCODEC_DATA") or _DEFAULT_SHARED_DATA)
    if not path.is_dir():
        message = f"shared test data not found at {path} (set MEDCODEC_DATA)"
        if _flag("CI") or _flag("MEDCODEC_REQUIRE_DATA"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def icon_mr(shared_data: Path) -> tuple[bytes, Any]:
    """(PS3.10 bytes, icon pixels): the shared JPEG 2000 lossless MR with an Icon Image Sequence whose
    64x64 8-bit pixel data are JPEG 2000 too, encapsulated as the data set's syntax requires; the
    kind of file (a nibabel test file) an outside audit found DCMTK refusing after transcoding."""
    import io

    import numpy as np
    import pydicom
    from pydicom.encaps import encapsulate

    from medcodec import external

    ds = pydicom.dcmread(shared_data / "transfer_syntaxes_mr" / "mr_384x384_j2k_lossless_gdcm.dcm")
    thumb = (ds.pixel_array[::6, ::6] >> 4).astype(np.uint8)  # a 64x64 8-bit icon of the image itself
    icon = pydicom.Dataset()
    icon.Rows, icon.Columns = thumb.shape
    icon.SamplesPerPixel, icon.PhotometricInterpretation = 1, "MONOCHROME2"
    icon.BitsAllocated, icon.BitsStored, icon.HighBit, icon.PixelRepresentation = 8, 8, 7, 0
    icon.PixelData = encapsulate([external.jpeg2k_encode(thumb, bits_stored=8)])  # lossless
    icon["PixelData"].VR, icon["PixelData"].is_undefined_length = "OB", True
    ds.IconImageSequence = [icon]
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue(), thumb


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/* from the current code (review the diff before committing)",
    )


@pytest.fixture(scope="session")
def regen_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--regen-golden"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Print the codec libraries the run used (imagecodecs habit), so results can be traced."""
    parts = []
    for mod in ("numpy", "numba", "pydicom", "imagecodecs", "libjpeg", "openjpeg", "skimage"):
        try:
            parts.append(f"{mod} {getattr(__import__(mod), '__version__', '?')}")
        except Exception as exc:  # report only
            parts.append(f"{mod} unavailable ({type(exc).__name__})")
    return ["codec libraries: " + ", ".join(parts)]


@pytest.fixture
def tmpfs(tmp_path: Path):
    """``tmpfs(kib)``: a folder on a tmpfs of that size, a real full disk (needs root, as CI has),
    unmounted after the test."""
    import subprocess

    mounted: list[Path] = []

    def mount(kib: int) -> Path:
        mnt = tmp_path / f"disk{len(mounted)}"
        mnt.mkdir()
        run = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(mnt)], capture_output=True)
        if run.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {run.stderr.decode().strip()}")
        mounted.append(mnt)
        return mnt

    try:
        yield mount
    finally:
        for mnt in mounted:
            if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
                # busy (a file a process still holds: a server the test started, not yet gone):
                # detached now, freed when the last holder closes, so no mount outlives the run
                subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)

