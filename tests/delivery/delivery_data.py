"""Shared by the delivery tests: the real series they use from ``shared_data`` (never copied into the repo), and
the external-tool rule. A plain module, not a conftest: only one module can be `conftest` in sys.modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcodec.testing.tools import require_tool  # noqa: F401  (used by the delivery tests)

CHEST = "ct_chest_lungpetctdx_A0001_philips"
HEAD = "ct_head_phantom_philips_ingenuity"
MR = "mr_head_ge_signa_t1_ctk"
US_RGB = "singles/us_US1_480x640_rgb_uncompressed.dcm"
US_YBR_JPEG = "singles/us_576x768_ybr_jpeg_extended.dcm"  # YBR_FULL, lossy JPEG extended
US_PALETTE = "singles/us_600x800_palette_rle.dcm"
BAD_UID = "singles/ct_512x512_12bit_jpeg_lossless.dcm"  # hashes instead of UIDs
# the same SOP Instance UID with other bytes (dirty high bits): a real conflict
CONFLICT_A = "singles/mr_384x384_12bit_unsigned.dcm"
CONFLICT_B = "singles/mr_384x384_12bit_unsigned_dirty_high_bits.dcm"


def series_files(shared_data: Path, folder: str, count: int | None = None) -> list[Path]:
    files = sorted(p for p in (shared_data / folder).iterdir() if p.is_file() and not p.name.startswith("."))
    return files if count is None else files[:count]


@pytest.fixture()
def store(tmp_path: Path):
    from medcodec.delivery import open_store

    with open_store(tmp_path / "store") as s:
        yield s




def ingested_record(store, path: Path):  # type: ignore[no-untyped-def]
    """Ingest ``path`` (no pre-computation) and return its catalog record."""
    import pydicom

    assert store.ingest([path], precompress=False).ok
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    (record,) = [r for r in store.instances(str(ds.StudyInstanceUID)) if r.sop_uid == ds.SOPInstanceUID]
    return record
