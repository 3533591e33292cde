"""Series templates (:mod:`medcodec.delivery.template`) write what the full path writes.

Every instance of the real series is written both ways (the template built from the series' first
instance, and ``Preset.encode_instance(measure=False)``, the live call) and must be the same bytes
and the same manifest entry; instances that differ where the preset reads are refused (written in
full), and :func:`~medcodec.delivery.template.preset_reads` is checked against the tags the
preset's code actually touches.
"""

from __future__ import annotations

import logging
import random
import struct
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
from delivery_data import CHEST, HEAD, MR, series_files, store  # noqa: F401  (the store fixture)
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from medcodec.delivery import presets, template
from medcodec.delivery.fastread import element_spans
from medcodec.delivery.template import SeriesTemplate, encode_live, preset_reads

pytestmark = pytest.mark.realdata


def _series(store: Any, shared_data: Path, folder: str, count: int, preset: str) -> tuple[list[bytes], Any]:
    files = series_files(shared_data, folder)[:count]
    store.ingest(files, precompress=False)
    uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
    mapping = store.series_mapping(uid, preset)
    return [f.read_bytes() for f in files], mapping


@pytest.mark.parametrize("folder", [MR, CHEST, HEAD])
@pytest.mark.parametrize("preset", ["diagnostic", "preview"])
def test_template_writes_the_full_paths_bytes(store: Any, shared_data: Path, folder: str, preset: str) -> None:
    datas, mapping = _series(store, shared_data, folder, 12, preset)
    p = presets.PRESETS[preset]
    first = p.encode_instance(datas[0], mapping=mapping, measure=False)
    t = SeriesTemplate.build(p, mapping, datas[0], first)
    assert t is not None
    for data in datas[1:]:
        full = p.encode_instance(data, mapping=mapping, measure=False)
        made = t.apply(data)
        assert made is not None  # these series differ only where the preset does not read
        assert made.entry == full.entry
        assert made.data == full.data


def _changed(data: bytes, **values: Any) -> bytes:
    ds = pydicom.dcmread(BytesIO(data))
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize(
    "change",
    [
        {"RescaleIntercept": "-1000"},  # group 0028: the pixel module and the mapping's rescale
        {"Modality": "OT"},  # the image class, hence the operating point
        {"BodyPartExamined": "HEAD"},  # CT-neuro or CT
        {"ReconstructionDiameter": "250"},  # CT-neuro by the field
        {"LossyImageCompressionRatio": "5"},  # appended to
        {"SeriesInstanceUID": "1.2.3.4"},  # derived from
    ],
)
def test_an_instance_differing_where_the_preset_reads_is_written_in_full(
    store: Any, shared_data: Path, change: dict[str, str]
) -> None:
    datas, mapping = _series(store, shared_data, CHEST, 3, "diagnostic")
    p = presets.PRESETS["diagnostic"]
    t = SeriesTemplate.build(p, mapping, datas[0], p.encode_instance(datas[0], mapping=mapping, measure=False))
    assert t is not None
    other = _changed(datas[1], **change)
    assert t.apply(other) is None
    assert t.apply(datas[1]) is not None  # the unchanged one is written from the template


def test_a_private_creator_that_differs_is_refused(store: Any, shared_data: Path) -> None:
    """A private element's VR follows its creator: another creator, another file."""
    datas, mapping = _series(store, shared_data, MR, 3, "diagnostic")
    p = presets.PRESETS["diagnostic"]
    t = SeriesTemplate.build(p, mapping, datas[0], p.encode_instance(datas[0], mapping=mapping, measure=False))
    assert t is not None
    swapped = datas[1].replace(b"GEMS_ACQU_01", b"GEMS_ACQX_01", 1)
    assert swapped != datas[1]
    assert t.apply(swapped) is None


def test_encode_live_checks_a_template_and_drops_a_wrong_one(
    store: Any, shared_data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    datas, mapping = _series(store, shared_data, MR, 6, "diagnostic")
    p = presets.PRESETS["diagnostic"]
    template._TEMPLATES.clear()
    expected = [p.encode_instance(d, mapping=mapping, measure=False).data for d in datas]
    assert [encode_live(p, d, mapping).data for d in datas[:3]] == expected[:3]
    (kept,) = template._TEMPLATES.values()
    assert kept.template is not None and kept.verified  # built on the first, checked on the second
    # a template gone wrong (here: one element's written bytes changed) is found at the next check
    tag = next(iter(kept.template.passable))
    kept.template.out[tag] = kept.template.out[tag][:-1] + b"\x01"
    kept.applied = template.CHECK_EVERY - 1
    with caplog.at_level(logging.WARNING, logger="medcodec.delivery.template"):
        assert encode_live(p, datas[3], mapping).data == expected[3]
    assert kept.template is None
    assert "differs from the full path" in caplog.text
    assert [encode_live(p, d, mapping).data for d in datas[4:]] == expected[4:]
    template._TEMPLATES.clear()


def test_other_presets_and_no_mapping_take_the_full_path(shared_data: Path) -> None:
    data = series_files(shared_data, CHEST)[0].read_bytes()
    template._TEMPLATES.clear()
    for name in ("original", "lossless"):
        p = presets.PRESETS[name]
        assert encode_live(p, data, None).data == p.encode_instance(data, measure=False).data
    p = presets.PRESETS["diagnostic"]
    assert encode_live(p, data, None).data == p.encode_instance(data, measure=False).data
    assert not template._TEMPLATES


def test_preset_reads_covers_what_the_preset_touches(
    store: Any, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Record every top-level tag the lossy preset's code looks up, sets or deletes (the writer
    excepted: it writes each element from its own bytes, or from its converted value with the
    element it depends on, all of which :func:`preset_reads` names), on each real series."""
    touched: set[int] = set()
    top: list[int] = []
    recording = [False]

    def record(ds: Dataset, key: Any) -> None:
        if recording[0] and top and id(ds) == top[0]:
            try:
                touched.add(int(Tag(key)))
            except Exception:  # (not a tag: a private attribute name)
                pass

    originals = {name: getattr(Dataset, name) for name in ("__getitem__", "__contains__", "__delitem__", "get_item")}
    set_item = Dataset.__setitem__

    def wrap(name: str) -> Any:
        def method(self: Dataset, key: Any, *args: Any) -> Any:
            record(self, key)
            return originals[name](self, key, *args)

        return method

    for name in originals:
        monkeypatch.setattr(Dataset, name, wrap(name))

    def setitem(self: Dataset, key: Any, value: Any) -> None:
        record(self, key)
        set_item(self, key, value)

    monkeypatch.setattr(Dataset, "__setitem__", setitem)
    real_read, real_write = presets.read_native, presets.encode_file_fast

    def read(data: bytes) -> Any:
        ds = real_read(data)
        top[:] = [id(ds)]
        recording[0] = True
        return ds

    def write(ds: Dataset) -> bytes:
        recording[0] = False
        return real_write(ds)

    monkeypatch.setattr(presets, "read_native", read)
    monkeypatch.setattr(presets, "encode_file_fast", write)
    for folder in (MR, CHEST, HEAD):
        files = series_files(shared_data, folder)[:2]
        store.ingest(files, precompress=False)
        uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
        for name in ("diagnostic", "preview"):
            mapping = store.series_mapping(uid, name)
            assert presets.PRESETS[name].encode_instance(files[1].read_bytes(), mapping=mapping, measure=False)
    assert len(touched) > 20  # the recording works
    # the windows are read into the PixelSpec and used by .mdc only (checked: they differ from one
    # GE MR instance to the next, and the template's bytes equal the full path's there)
    # group lengths are deleted (the pixel data's) or skipped whatever their value, never written
    missed = {t for t in touched if not preset_reads(t) and t & 0xFFFF} - {0x00281050, 0x00281051}
    assert not missed, [f"{t:08X}" for t in sorted(missed)]


def test_a_series_whose_first_instance_is_unlike_the_rest_gets_a_template_from_another(
    store: Any, shared_data: Path
) -> None:
    datas, mapping = _series(store, shared_data, CHEST, 10, "diagnostic")
    p = presets.PRESETS["diagnostic"]
    odd = [_changed(d, BodyPartExamined="CHEST", ImageComments="scout") for d in datas[:2]]
    template._TEMPLATES.clear()
    written = [encode_live(p, d, mapping).data for d in [*odd, *datas[2:]]]
    assert written == [p.encode_instance(d, mapping=mapping, measure=False).data for d in [*odd, *datas[2:]]]
    (kept,) = template._TEMPLATES.values()
    assert kept.builds == 2 and kept.template is not None and kept.verified  # on the 2nd, again on the 5th
    assert kept.applied >= 4  # the later instances came from the second template


def test_a_series_of_one_instance_costs_no_template(
    store: Any, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template is built on a series' second instance: one image alone (a radiograph) is only
    coded once."""
    datas, mapping = _series(store, shared_data, CHEST, 2, "diagnostic")
    p = presets.PRESETS["diagnostic"]
    template._TEMPLATES.clear()
    builds: list[Any] = []
    real = template._build
    monkeypatch.setattr(template, "_build", lambda *a: builds.append(a) or real(*a))
    encode_live(p, datas[0], mapping)
    assert builds == []
    encode_live(p, datas[1], mapping)
    assert len(builds) == 1
    template._TEMPLATES.clear()
    template._TEMPLATES.clear()


@pytest.mark.parametrize("folder", [MR, HEAD])
def test_damaged_instances_are_written_as_the_full_path_writes_them(store: Any, shared_data: Path, folder: str) -> None:
    """Bytes changed at random in the headers of later instances (values, lengths, tags): whatever
    the template writes is what the full path writes, and what it cannot write it leaves to it."""
    datas, mapping = _series(store, shared_data, folder, 4, "diagnostic")
    p = presets.PRESETS["diagnostic"]
    t = SeriesTemplate.build(p, mapping, datas[0], p.encode_instance(datas[0], mapping=mapping, measure=False))
    assert t is not None
    rng = random.Random(20261130)
    written = refused = 0
    for k in range(100):
        data = bytearray(datas[1 + k % 3])
        end = template._meta_end(bytes(data))
        assert end is not None
        spans = element_spans(bytes(data), end, t.implicit)
        assert spans is not None
        header = [s for s in spans if s[0] != 0x7FE00010]
        for _ in range(rng.choice((1, 1, 2, 3))):
            _, start, stop = rng.choice(header)
            at = (
                rng.randrange(start, stop)
                if rng.random() < 0.8
                else rng.randrange(start + 8, stop)
                if stop - start > 8
                else start
            )
            data[at] = rng.randrange(256)
        made = t.apply(bytes(data))
        try:
            full = p.encode_instance(bytes(data), mapping=mapping, measure=False)
        except Exception as exc:  # the full path refuses it: so must the template
            assert made is None, f"the template wrote what the full path refuses ({type(exc).__name__})"
            refused += 1
            continue
        if made is None:
            refused += 1
            continue
        assert made.data == full.data and made.entry == full.entry
        written += 1
    assert written >= 5 and refused >= 5, (written, refused)  # both kinds were exercised


def test_group_lengths_that_differ_do_not_stop_the_template(store: Any, shared_data: Path) -> None:
    """A window of another length changes (0028,0000) in files that keep group lengths: such
    elements are never written, so the template still writes the instance."""
    datas, mapping = _series(store, shared_data, MR, 3, "diagnostic")  # implicit VR, with group lengths
    p = presets.PRESETS["diagnostic"]
    t = SeriesTemplate.build(p, mapping, datas[0], p.encode_instance(datas[0], mapping=mapping, measure=False))
    assert t is not None and 0x00280000 in t.tags
    data = bytearray(datas[1])
    spans = {tag: (start, stop) for tag, start, stop in element_spans(datas[1], template._meta_end(datas[1]), True)}
    start, stop = spans[0x00281050]  # Window Center, implicit VR: tag, 4-byte length, value
    new = b"1234.5"
    delta = len(new) - (stop - start - 8)
    assert delta
    data[start:stop] = data[start : start + 4] + struct.pack("<L", len(new)) + new
    group = spans[0x00280000][0]  # (0028,0000) comes first: its offset is unchanged
    struct.pack_into("<L", data, group + 8, struct.unpack_from("<L", data, group + 8)[0] + delta)
    other = bytes(data)
    assert pydicom.dcmread(BytesIO(other)).WindowCenter == 1234.5
    made = t.apply(other)
    assert made is not None
    assert made.data == p.encode_instance(other, mapping=mapping, measure=False).data


def test_the_walk_compares_runs_of_stable_elements_and_learns_what_varies(store: Any, shared_data: Path) -> None:
    """The walk compares runs of elements that never differed as one slice (``_plan``): after a
    few instances the elements that vary in the series (Instance Number...) stand alone and the
    rest are a few runs; an instance differing inside a run (a passable element changed) is
    still written as the full path writes it, and that element then stands alone too."""
    datas, mapping = _series(store, shared_data, MR, 6, "diagnostic")
    p = presets.PRESETS["diagnostic"]
    t = SeriesTemplate.build(p, mapping, datas[0], p.encode_instance(datas[0], mapping=mapping, measure=False))
    assert t is not None
    for data in datas[1:5]:
        made = t.apply(data)
        assert made is not None and made.data == p.encode_instance(data, mapping=mapping, measure=False).data
    number = t.tags.index(0x00200013)  # Instance Number: differs between instances
    assert number in t.varying and t.tags.index(0x7FE00010) in t.varying
    plan = t._plan or t._make_plan()
    assert (None, number, number + 1) in plan
    assert len(plan) < len(t.tags) // 4  # runs, not elements
    assert [i for _, first, stop in plan for i in range(first, stop)] == list(range(len(t.tags)))
    stable = next(
        i
        for i, tag in enumerate(t.tags)
        if i not in t.varying and tag in t.passable and tag == 0x00081090  # Manufacturer's Model Name
    )
    raw = bytearray(datas[5])
    spans = {tag: (start, stop) for tag, start, stop in element_spans(datas[5], template._meta_end(datas[5]), True)}
    start, stop = spans[0x00081090]  # implicit VR: tag, 4-byte length, value; the same length
    raw[start + 8 : stop] = b"X" * (stop - start - 8)
    data = bytes(raw)
    assert pydicom.dcmread(BytesIO(data)).ManufacturerModelName.startswith("XX")
    made = t.apply(data)
    assert made is not None and made.data == p.encode_instance(data, mapping=mapping, measure=False).data
    assert stable in t.varying


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize(
    "value", [b"1.2.840.10008.5.1.4", b"1.2.3\0", b"1.2.34 ", b"1.2.3\\4.5\0", b"1.2.x3 ", b"", b"\0\0", b"1.2\0.3 "]
)
def test_a_sop_instance_uid_is_read_as_pydicom_reads_it(implicit: bool, value: bytes) -> None:
    """``_uid_of`` reads plain UIDs itself and leaves the rest (several values, other characters,
    odd padding) to pydicom: the same string either way."""
    from pydicom.dataelem import convert_raw_data_element

    if implicit:
        raw = struct.pack("<HHL", 0x0008, 0x0018, len(value)) + value
    else:
        raw = struct.pack("<HH2sH", 0x0008, 0x0018, b"UI", len(value)) + value
    elem = template._raw_element(raw, implicit)
    assert elem is not None
    assert template._uid_of(raw, implicit) == str(convert_raw_data_element(elem).value or "")


@pytest.mark.parametrize("folder", [MR, CHEST, HEAD])
def test_padding_found_in_one_pass_answers_as_the_masks_do(store: Any, shared_data: Path, folder: str) -> None:
    """``mapping.padding_found`` (one kernel pass, what both paths of a live file call) gives what the
    masks gave before it: any padding voxel, and whether the padding touches tissue; on the real
    series' frames with their mapping (the MR's background 0 touches noise; the CTs'), and on the
    same frames with padding moved where it touches nothing."""
    from dataclasses import replace as replace_field

    import numpy as np

    from medcodec.dicom.mapping import padding_found, padding_touches_tissue, tissue_mask

    datas, mapping = _series(store, shared_data, folder, 6, "diagnostic")
    p = presets.PRESETS["diagnostic"]
    t = SeriesTemplate.build(p, mapping, datas[0], p.encode_instance(datas[0], mapping=mapping, measure=False))
    assert t is not None
    seen = set()
    mappings = [mapping]
    if mapping.padding is not None:
        mappings.append(replace_field(mapping, padding=(-30000, -29990)))
    for data in datas:
        walked = t._walk(data, template._read_meta(data))
        assert walked is not None
        frames = np.asarray(t._frames(walked[2]))
        for m in mappings:
            pad = m.padding_mask(frames)
            want = (bool(pad.any()), padding_touches_tissue(frames, pad, tissue_mask(frames, t.spec) & ~pad, m))
            assert padding_found(frames, t.spec, m) == want
            seen.add(want)
    if folder == MR:
        assert (True, True) in seen  # the MR's case: padding value 0 next to noise


def test_the_preview_keeps_each_instances_image_comments_after_its_label(store: Any, shared_data: Path) -> None:
    """The preview's Image Comments is its NOT FOR DIAGNOSIS label, then the source's own comment
    (until 2026-12-02 the comment was replaced: clinical free text lost; an outside audit), the
    same from the template as from the full path, and a slice with a comment of its own keeps it."""
    datas, mapping = _series(store, shared_data, CHEST, 4, "preview")
    datas = [_changed(d, SpecificCharacterSet="ISO_IR 192", ImageComments="Kontrastmittel 患者") for d in datas]
    datas[3] = _changed(datas[3], ImageComments="a comment of its own")
    p = presets.PRESETS["preview"]
    first = p.encode_instance(datas[0], mapping=mapping, measure=False)
    t = SeriesTemplate.build(p, mapping, datas[0], first)
    assert t is not None
    for k, data in enumerate(datas[1:], 1):
        full = p.encode_instance(data, mapping=mapping, measure=False)
        comment = str(pydicom.dcmread(BytesIO(full.data)).ImageComments)
        assert comment.startswith("PREVIEW - NOT FOR DIAGNOSIS: lossy preview at "), comment
        assert comment.endswith("Kontrastmittel 患者" if k < 3 else "a comment of its own"), comment
        made = t.apply(data)
        assert made is None if k == 3 else made is not None and made.data == full.data
