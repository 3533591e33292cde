"""``manifest.json``: what each file of an archive is and how faithful it is.

One entry per file (:class:`ManifestEntry`); the archive's manifest (:func:`build_manifest`)::

    {"format": "medcodec-manifest/1", "generator": "medcodec 0.1.0", "preset": "diagnostic",
     "study_instance_uid": "...", "series_instance_uid": "..." | null, "diagnostic": true,
     "label": "...", "files": [ManifestEntry.to_dict(), ...],
     "totals": {"files": n, "bytes": ..., "source_bytes": ..., "passthrough": k}}

Numbers (measured by decoding the written file, see :mod:`medcodec.delivery.presets`):
``ratio`` is the uncompressed pixel size (Bits Allocated / 8 bytes per sample) over the
compressed pixel data (the value appended to (0028,2112)); ``psnr`` in dB with peak
``2**BitsStored - 1`` of the source and ``max_error`` in source stored units, both over the
voxels the series mapping did not clip; ``max_error_hu`` in output units (HU for CT);
``n_clipped`` the voxels the mapping clipped (declared padding without a code of its own
included), ``null`` when the source was not decoded (a live file).
``quality`` is the JPEG quality a file was coded at; ``max_error_bound`` the maximum error a
near-lossless file guarantees (JPEG-LS ``NEAR``, source stored units; checked when measured, and
``null`` for files coded at a quality).
``psnr`` is ``null`` when the file is exact (lossless, passthrough) or was not measured
(``measured: false``). A ``passthrough`` file is the original, byte for byte (``reason`` says why).
``lossy`` says what the file is: a passthrough of an original whose pixel data were already
lossy (a JPEG ultrasound, a lossy JPEG 2000 series) is ``lossy: true`` with no error figures,
which only its maker knew.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import Any, NamedTuple

__all__ = [
    "CODING_REVISION",
    "current_rules",
    "ManifestEntry",
    "RenderedRow",
    "render_row",
    "build_manifest",
    "MANIFEST_NAME",
    "MANIFEST_FORMAT",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "medcodec-manifest/1"

#: What the presets make of an instance, as a number each file's entry carries (``revision``):
#: raised whenever a preset writes an instance differently (an operating point, which images
#: it codes or passes through, the attributes it writes), so that a store made by an older
#: medcodec is recognised and ``medcodec ingest --refresh`` codes its renditions and writes its
#: archives again (docs/delivery.md, "Upgrading"). Entries written before there was one are
#: revision 1: every store made before 2026-12-02 (an outside audit of the upgrade path found
#: a head CT kept at the body-CT point, archives of lossy originals saying ``lossy: false``,
#: lossy originals coded a second time, none of it redone by ``--refresh`` or ``reindex``).
#:
#: 2 (2026-12-02): the rules of that day (CT-neuro by the field, lossy originals passed through,
#: colour coded, the metal span, Real World Value Mapping remapped).
#: 3 (2026-12-04): declared padding without a code of its own said in the Derivation Description and
#: the entry's mapping, ``n_clipped`` counting what the mapping clips (padding kept as it is was counted;
#: an outside re-check found a store made before still serving the old labels after ``--refresh``).
#: 4 (2026-12-05): a lossy original whose header says nothing (JPEG-LS NEAR > 0, 9-7 JPEG 2000 without
#: (0028,2110)) keeps its lossy step in every copy (``write.keep_lossy_history``); a declared padding
#: beyond content that needs a scale keeps a code of its own (``padding+scale``) instead of stretching
#: the scale (an outside audit).
#: 5 (2026-12-05): a lossy copy's SOP Instance and Series Instance UIDs name the series mapping, the
#: quality and this revision besides the preset and the original (``presets._coding_name``): one UID
#: had carried two images once a series was re-coded (an outside audit with Orthanc).
CODING_REVISION = 5


def current_rules(entry: str | dict[str, Any]) -> bool:
    """Whether a manifest entry (its JSON, or parsed) was made under this medcodec's
    :data:`CODING_REVISION` (an entry without one is revision 1); unreadable JSON is not."""
    if isinstance(entry, str):
        try:
            entry = json.loads(entry)
        except ValueError:
            return False
    return isinstance(entry, dict) and entry.get("revision", 1) == CODING_REVISION


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a preset (see the module docstring for the meaning of each number)."""

    preset: str
    sop_instance_uid: str  # the original's
    series_instance_uid: str  # the original's
    rendition_sop_instance_uid: str  # the file's own (new for lossy files)
    sop_class_uid: str
    modality: str
    transfer_syntax_uid: str
    passthrough: bool
    lossy: bool
    bytes: int
    source_bytes: int
    ratio: float | None = None
    psnr: float | None = None
    max_error: float | None = None
    max_error_hu: float | None = None
    n_clipped: int | None = 0  # None: the source was not decoded (a live file), so not known
    quality: float | None = None
    max_error_bound: int | None = None  # the coder's guarantee (near-lossless), in source stored units
    measured: bool = True
    reason: str = ""
    file: str = ""  # name inside the archive, set when the archive is built
    mapping: str = ""  # the series mapping, described
    revision: int = CODING_REVISION  # the coding rules that made the file (CODING_REVISION)

    def to_dict(self) -> dict[str, Any]:
        # every field is a scalar, so a shallow dict is asdict()'s result without its deep copies
        # (the live server builds one per instance of an archive)
        out = {name: getattr(self, name) for name in _FIELDS}
        for key in ("ratio", "psnr", "max_error", "max_error_hu"):
            value = out[key]
            if value is not None and not math.isfinite(value):
                out[key] = None
            elif value is not None:
                out[key] = round(float(value), 4)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestEntry:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known.setdefault("revision", 1)  # written before entries carried one
        return cls(**known)

    @classmethod
    def from_json(cls, text: str) -> ManifestEntry:
        return cls.from_dict(json.loads(text))

    def named(self, file: str) -> ManifestEntry:
        return replace(self, file=file)

    @classmethod
    def original(cls, record: Any, preset: str, *, lossy: bool = False) -> ManifestEntry:
        """The row of a stored original delivered as it is (``record``: a catalog
        :class:`~.catalog.InstanceRecord`), in pre-computed and live archives alike; ``lossy``:
        its pixel data are lossy (:meth:`~.catalog.Catalog.lossy_instances`)."""
        return cls(
            preset=preset,
            sop_instance_uid=record.sop_uid,
            series_instance_uid=record.series_uid,
            rendition_sop_instance_uid=record.sop_uid,
            sop_class_uid=record.sop_class_uid,
            modality=record.modality,
            transfer_syntax_uid=record.transfer_syntax_uid,
            passthrough=True,
            lossy=lossy,
            bytes=record.size,
            source_bytes=record.size,
            measured=False,
            reason="the original preset delivers the stored file",
        )


_FIELDS = tuple(f.name for f in fields(ManifestEntry))


class RenderedRow(NamedTuple):
    """One file's line of ``manifest.json`` (:func:`render_row`) and the numbers the totals add up."""

    json: str
    bytes: int
    source_bytes: int
    passthrough: bool


def render_row(entry: ManifestEntry) -> RenderedRow:
    """``entry`` as its line of ``manifest.json``. A live archive renders each row as its file is
    sent, so that the manifest, the last entry, costs a join and not ~5 ms of JSON on the last
    byte of a 100-file study."""
    row = entry.to_dict()
    return RenderedRow(json.dumps(row, sort_keys=True), int(row["bytes"]), int(row["source_bytes"]),
                       bool(row["passthrough"]))  # fmt: skip


def build_manifest(
    entries: Iterable[ManifestEntry | RenderedRow],
    *,
    preset: str,
    study_uid: str,
    series_uid: str | None = None,
    diagnostic: bool = True,
    label: str = "",
) -> bytes:
    """The ``manifest.json`` bytes of an archive (UTF-8, stable key order, one file per line);
    ``entries`` may be rendered already (:func:`render_row`)."""
    from .. import __version__

    rows = [e if isinstance(e, RenderedRow) else render_row(e) for e in entries]
    doc = {
        "format": MANIFEST_FORMAT,
        "generator": f"medcodec {__version__}",
        "preset": preset,
        "study_instance_uid": study_uid,
        "series_instance_uid": series_uid,
        "diagnostic": diagnostic,
        "label": label,
        "files": None,  # the rendered rows, below
        "totals": {
            "files": len(rows),
            "bytes": sum(r.bytes for r in rows),
            "source_bytes": sum(r.source_bytes for r in rows),
            "passthrough": sum(1 for r in rows if r.passthrough),
        },
    }
    # one file per line (json's C encoder; indent= would select its pure-Python encoder, ~10 ms for a
    # 140-file study at the very end of a live archive, i.e. on its last byte)
    lines = []
    for key, value in sorted(doc.items()):
        if key == "files":
            joined = ",\n  ".join(r.json for r in rows)
            lines.append(f' "files": [\n  {joined}\n ]' if joined else ' "files": []')
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, sort_keys=True)}")
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8")
