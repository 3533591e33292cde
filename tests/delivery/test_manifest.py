"""``manifest.json`` rows (the live server writes one per instance): every field of ManifestEntry, numbers rounded, non-finite numbers as null."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, fields

from medcodec.delivery.manifest import ManifestEntry, build_manifest


def _entry(**changes: object) -> ManifestEntry:
    values: dict[str, object] = dict(
        preset="diagnostic", sop_instance_uid="1.2.3", series_instance_uid="1.2", rendition_sop_instance_uid="2.25.1",
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2", modality="CT", transfer_syntax_uid="1.2.840.10008.1.2.4.51",
        passthrough=False, lossy=True, bytes=1000, source_bytes=9000, ratio=9.123456789, psnr=math.inf,
        max_error=12.0, max_error_hu=12.0,
    )  # fmt: skip
    values.update(changes)
    return ManifestEntry(**values)  # type: ignore[arg-type]


def test_row_has_every_field_rounded_and_json_safe():
    entry = _entry()
    row = entry.to_dict()
    assert list(row) == [f.name for f in fields(ManifestEntry)]
    expected = asdict(entry) | {"ratio": 9.1235, "psnr": None}
    assert row == expected
    assert json.loads(entry.to_json()) == expected  # no Infinity in the JSON


def test_manifest_lists_rows_in_order():
    rows = [_entry(sop_instance_uid=f"1.2.{i}") for i in range(3)]
    manifest = json.loads(build_manifest(rows, preset="diagnostic", study_uid="1.2", series_uid=None))
    assert [f["sop_instance_uid"] for f in manifest["files"]] == ["1.2.0", "1.2.1", "1.2.2"]
    assert manifest["totals"] == {"files": 3, "bytes": 3000, "source_bytes": 27000, "passthrough": 0}


def test_manifest_is_json_with_one_file_per_line():
    rows = [_entry(sop_instance_uid=f"1.2.{i}") for i in range(3)]
    text = build_manifest(rows, preset="diagnostic", study_uid="1.2", label="x").decode("utf-8")
    doc = json.loads(text)
    assert doc["files"] == [json.loads(r.to_json()) for r in rows] and doc["label"] == "x"
    assert sum(1 for line in text.splitlines() if '"sop_instance_uid"' in line) == 3
    assert json.loads(build_manifest([], preset="original", study_uid="1.2"))["files"] == []
