"""The one table of backends and transfer syntaxes, and the views other modules take of it."""

from __future__ import annotations

import pytest
from pydicom.uid import UID

from medcodec.dicom import LOSSY_METHODS, SYNTAXES
from medcodec.errors import InvalidInputError, UnsupportedFeatureError
from medcodec.evaluate.peers import ADAPTERS, get_adapter
from medcodec.registry import (
    BACKENDS,
    TRANSFER_SYNTAXES,
    backend,
    can_decode,
    can_encode,
    encodable_syntaxes,
    quality_step,
    transfer_syntax,
)

REQUIRED = {
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",
}  # fmt: skip


def test_table_covers_the_syntaxes_and_agrees_with_pydicom() -> None:
    assert REQUIRED <= set(TRANSFER_SYNTAXES)
    for uid, ts in TRANSFER_SYNTAXES.items():
        u = UID(uid)
        assert (ts.keyword, ts.name, ts.encapsulated) == (u.keyword, u.name, u.is_encapsulated)
        assert (ts.method in LOSSY_METHODS) if ts.lossy else ts.method is None
        if ts.backend is not None:
            assert ts.backend in BACKENDS
        assert ts.bits[0] <= ts.bits[1] <= 16
    # lossless-only syntaxes are not lossy; the ones that allow lossy coding are
    lossy = {uid for uid, ts in TRANSFER_SYNTAXES.items() if ts.lossy}
    assert lossy == {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
                     "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.203"}  # fmt: skip


def test_lookup_by_uid_keyword_name_and_unknown() -> None:
    ts = transfer_syntax("1.2.840.10008.1.2.4.51")
    assert transfer_syntax("JPEGExtended12Bit") is ts and transfer_syntax("jpeg extended (process 2 and 4)") is ts
    assert transfer_syntax(ts) is ts
    for bad in ("1.2.3.4", "webp", ""):
        with pytest.raises(InvalidInputError, match="not supported"):
            transfer_syntax(bad)
        with pytest.raises(UnsupportedFeatureError):
            transfer_syntax(bad)


def test_can_encode_and_decode() -> None:
    assert can_encode("1.2.840.10008.1.2.4.51") and can_encode("JPEGBaseline8Bit")
    assert can_encode("1.2.840.10008.1.2.4.57") and can_encode("1.2.840.10008.1.2.4.70")  # libjpeg-turbo 3
    assert not can_encode("1.2.3.4") and not can_decode("1.2.3.4")
    assert can_decode("1.2.840.10008.1.2.4.57") and can_decode("1.2.840.10008.1.2.1")
    assert {ts.uid for ts in encodable_syntaxes()} <= REQUIRED


def test_coded_depth_follows_what_each_codestream_holds() -> None:
    assert transfer_syntax("1.2.840.10008.1.2.4.50").coded_depth(12, False) == (8, False)
    assert transfer_syntax("1.2.840.10008.1.2.4.51").coded_depth(16, True) == (12, False)
    assert transfer_syntax("1.2.840.10008.1.2.4.91").coded_depth(16, True) == (16, True)
    assert transfer_syntax("1.2.840.10008.1.2.4.203").coded_depth(12, False) == (16, False)  # container depth
    assert transfer_syntax("1.2.840.10008.1.2.4.81").coded_depth(16, True) == (16, False)  # JPEG-LS: unsigned
    assert transfer_syntax("1.2.840.10008.1.2.5").coded_depth(12, True) == (12, True)


def test_views_read_the_one_table() -> None:
    """The DICOM writer's families and the evaluation's adapters take knobs and bit depths from here."""
    for name, family in SYNTAXES.items():
        codec = family.codec
        assert family.knob(16) == codec.knob_for(16) and family.method == family.syntaxes[-1].method
        assert all(ts.short == name and ts.backend == codec.name for ts in family.syntaxes)
    for name in ADAPTERS:
        adapter = get_adapter(name)
        b = BACKENDS[type(adapter).backend]  # type: ignore[attr-defined]
        assert adapter.knob is b.knob
        assert adapter.max_bits_stored == b.bits[1]


def test_knob_ranges_and_quality_law() -> None:
    assert backend("charls").knob_for(8).high == 127 and backend("charls").knob_for(16).high == 255  # type: ignore[union-attr]
    with pytest.raises(InvalidInputError, match="unknown codec backend"):
        backend("jpeg3000")
    assert quality_step(87.5, 12) == 2.0
    for name in ("openjpeg", "openjph", "charls", "medcodec-jpeg"):
        b = BACKENDS[name]
        knob = b.knob_for(16)
        assert knob is not None
        values = [b.knob_for_quality(q, 12, 16) for q in (10, 40, 75, 95)]
        # size grows with quality: the search coordinate never decreases
        coords = [knob.to_search(v) for v in values]
        assert coords == sorted(coords) and coords[0] < coords[-1]
        assert all(knob.low <= v <= knob.high for v in values)
    with pytest.raises(UnsupportedFeatureError):
        BACKENDS["zlib"].knob_for_quality(75, 12, 12)


def test_availability_is_reported_with_a_reason() -> None:
    for b in BACKENDS.values():
        why = b.why_unavailable()
        assert (why is None) == b.is_available()
        assert why is None or (isinstance(why, str) and why)
        assert isinstance(b.version(), str)
    assert BACKENDS["zlib"].is_available() and BACKENDS["medcodec-jpeg"].is_available()


def test_our_own_coder_failing_its_self_test_is_not_called_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """numba 0.59 could not compile a JPEG kernel and `--to dicom-jpeg` said "dicom-jpeg is not
    available: TypingError ..." (a whole traceback on one line): it names the versions and asks for a
    report instead, on one line (an outside audit of a pip install, 2026-12-03)."""
    import medcodec.codec

    def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("Failed in nopython mode pipeline\nUnknown attribute 'log2' ...")

    monkeypatch.setattr(medcodec.codec, "encode", broken)
    why = BACKENDS["medcodec-jpeg"].missing()
    assert why is not None and "failed its self-test (RuntimeError: Failed in nopython mode pipeline)" in why
    assert "numba " in why and "please report it" in why and "\n" not in why
