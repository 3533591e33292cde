"""Marker segments (T.81 Annex B): byte-exact round trips and field checks."""

from __future__ import annotations

import numpy as np
import pytest

from medcodec.codec import entropy
from medcodec.codec import markers as M
from medcodec.errors import CorruptStreamError, TruncatedStreamError

ROUND_TRIPS = [
    M.Dqt((M.QuantizationTable(0, 0, tuple(range(1, 65))),)),
    M.Dqt((M.QuantizationTable(1, 2, tuple(range(200, 200 + 64 * 900, 900))), M.QuantizationTable(0, 3, (255,) * 64))),
    M.Dht((M.HuffmanSpec(0, 0, (0, 1, 5, 1, 1, 1, 1, 1, 1) + (0,) * 7, tuple(range(12))),)),
    M.Dht((M.HuffmanSpec(0, 1, (1,) + (0,) * 15, (0,)), M.HuffmanSpec(1, 3, (0, 2) + (0,) * 14, (0x00, 0xF0)))),
    M.Dri(0),
    M.Dri(65535),
    M.Sof(M.SOF0, 8, 1, 1, (M.FrameComponent(1, 1, 1, 0),)),
    M.Sof(M.SOF1, 12, 65535, 513, (M.FrameComponent(7, 2, 4, 3),)),
    M.Sof(0xFFC2, 8, 16, 16, (M.FrameComponent(1, 2, 2, 0), M.FrameComponent(2), M.FrameComponent(3, 1, 1, 1))),
    M.Sos((M.ScanComponent(1, 0, 0),)),
    M.Sos((M.ScanComponent(1, 1, 2), M.ScanComponent(2, 3, 0)), Ss=1, Se=5, Ah=2, Al=1),
    M.App(0, b"JFIF\x00\x01\x02"),
    M.App(15, b""),
    M.Com(b"medcodec"),
]


@pytest.mark.parametrize("seg", ROUND_TRIPS, ids=lambda s: type(s).__name__)
def test_round_trip(seg):
    raw = seg.to_bytes()
    assert raw[:2] == seg.marker.to_bytes(2, "big")
    assert int.from_bytes(raw[2:4], "big") == len(raw) - 2
    back = type(seg).from_bytes(raw, 100)
    assert back == seg
    assert back.to_bytes() == raw


def test_length_properties():
    dqt = ROUND_TRIPS[1]
    assert dqt.Lq == len(dqt.to_bytes()) - 2 == 2 + 129 + 65
    dht = ROUND_TRIPS[3]
    assert dht.Lh == len(dht.to_bytes()) - 2
    sof = ROUND_TRIPS[8]
    assert (sof.Nf, sof.Lf) == (3, 17) and sof.process.startswith("progressive")
    sos = ROUND_TRIPS[10]
    assert (sos.Ns, sos.Ls) == (2, 10)
    assert M.Dri.Lr == 4 and M.App(1, b"ab").Lp == 4 and M.Com(b"x").Lc == 3


def test_known_bytes():
    """A DRI and a SOF0 written by hand from T.81 §B.2.4.4 and §B.2.2."""
    assert M.Dri(0x1234).to_bytes() == bytes.fromhex("FFDD 0004 1234")
    assert M.Sof(M.SOF1, 12, 0x0201, 0x0403, (M.FrameComponent(1, 1, 1, 0),)).to_bytes() == bytes.fromhex(
        "FFC1 000B 0C 0201 0403 01 01 11 00"
    )


def test_quantization_table_orders():
    steps = np.arange(1, 65, dtype=np.uint16)
    t = M.QuantizationTable.from_steps(steps)
    assert t.Pq == 0 and t.Q[:3] == (1, 2, 9)  # zigzag: (0,0), (0,1), (1,0)
    np.testing.assert_array_equal(t.natural(), steps)
    assert M.QuantizationTable.from_steps(steps * 5).Pq == 1


def test_huffman_spec_table_conversion():
    freq = np.array([5, 1, 0, 7, 2, 2], np.int64)
    table = entropy.HuffmanTable.from_frequencies(freq)
    spec = M.HuffmanSpec.from_table(table, Tc=0, Th=1)
    back = spec.to_table()
    np.testing.assert_array_equal(back.bits, table.bits)
    np.testing.assert_array_equal(back.huffval, table.huffval)


def test_names():
    assert M.marker_name(0xFFC1) == "SOF1"
    assert M.marker_name(0xFFD3) == "RST3" and M.is_rst(0xFFD7) and not M.is_rst(0xFFD8)
    assert M.marker_name(0xFFEE) == "APP14" and M.marker_name(0xFFFE) == "COM"
    assert M.marker_name(0xFF45).startswith("RES")
    assert set(M.SOF_PROCESSES) == {0xFFC0 + i for i in range(16)} - {0xFFC4, 0xFFC8, 0xFFCC}


def _seg(marker: int, body: bytes) -> bytes:
    return marker.to_bytes(2, "big") + (len(body) + 2).to_bytes(2, "big") + body


BAD = [
    (M.Dqt, _seg(M.DQT, bytes([0x20]) + bytes(range(1, 65))), "Pq=2"),
    (M.Dqt, _seg(M.DQT, bytes([0x04]) + bytes(range(1, 65))), "Tq=4"),
    (M.Dqt, _seg(M.DQT, bytes([0x00]) + bytes(64)), "zero element"),
    (M.Dqt, _seg(M.DQT, bytes([0x10]) + bytes(range(1, 65))), "table 0 elements"),
    (M.Dqt, _seg(M.DQT, b""), "no table"),
    (M.Dht, _seg(M.DHT, bytes([0x20]) + bytes(16)), "Tc=2"),
    (M.Dht, _seg(M.DHT, bytes([0x04]) + bytes(16)), "Th=4"),
    (M.Dht, _seg(M.DHT, bytes([0x00]) + bytes([0, 0, 0, 0, 0, 0, 0, 255, 255] + [0] * 7)), "at most 256"),
    (M.Dht, _seg(M.DHT, bytes([0x00]) + bytes([0, 3] + [0] * 14) + b"\x00\x01"), "symbol values"),
    (M.Dri, _seg(M.DRI, b"\x00\x01\x02"), "Lr=5"),
    (M.Sof, _seg(M.SOF0, bytes([8, 0, 8, 0, 8, 2, 1, 0x11, 0])), "does not match Nf=2"),
    (M.Sof, _seg(M.SOF0, bytes([8, 0, 8, 0, 8, 0])), "Nf=0"),
    (M.Sof, _seg(M.SOF0, bytes([8, 0, 8, 0, 0, 1, 1, 0x11, 0])), "X=0"),
    (M.Sof, _seg(M.SOF0, bytes([8, 0, 8, 0, 8, 1, 1, 0x51, 0])), "sampling factors"),
    (M.Sof, _seg(M.SOF0, bytes([8, 0, 8, 0, 8, 1, 1, 0x11, 4])), "Tqi=4"),
    (M.Sof, _seg(M.SOF0, bytes([8, 0, 8, 0, 8, 2, 1, 0x11, 0, 1, 0x11, 0])), "share an identifier"),
    (M.Sof, _seg(M.DHT, bytes([8, 0, 8, 0, 8, 1, 1, 0x11, 0])), "not a start of frame"),
    (M.Sos, _seg(M.SOS, bytes([0, 0, 63, 0])), "Ns=0"),
    (M.Sos, _seg(M.SOS, bytes([1, 1, 0x40, 0, 63, 0])), "Td=4"),
    (M.Sos, _seg(M.SOS, bytes([2, 1, 0, 0, 63, 0])), "does not match Ns=2"),
    (M.App, _seg(M.COM, b"x"), "not APPn"),
    (M.Com, _seg(M.APP0, b"x"), "expected COM"),
]


@pytest.mark.parametrize("cls, raw, match", BAD, ids=[b[2] for b in BAD])
def test_invalid_fields(cls, raw, match):
    with pytest.raises(CorruptStreamError, match=match) as info:
        cls.from_bytes(raw, 1234)
    assert info.value.offset is not None and info.value.offset >= 1234
    assert "T.81" in str(info.value)


@pytest.mark.parametrize("seg", ROUND_TRIPS, ids=lambda s: type(s).__name__)
def test_truncated(seg):
    raw = seg.to_bytes()
    for cut in range(len(raw)):
        with pytest.raises(TruncatedStreamError) as info:
            type(seg).from_bytes(raw[:cut], 50)
        assert info.value.offset == 50


def test_length_below_two():
    with pytest.raises(CorruptStreamError, match="length field"):
        M.Dri.from_bytes(bytes.fromhex("FFDD 0001 00"), 7)
    with pytest.raises(CorruptStreamError, match="length field is 1"):
        M.segment_bounds(bytes.fromhex("FFDD 0001 00"), 0)


def test_writer_rejects_invalid():
    with pytest.raises(ValueError):
        M.Dqt((M.QuantizationTable(0, 0, (256,) * 64),)).to_bytes()
    with pytest.raises(ValueError):
        M.Dqt((M.QuantizationTable(0, 0, (0,) * 64),)).to_bytes()
    with pytest.raises(ValueError):
        M.Dht((M.HuffmanSpec(0, 0, (2,) + (0,) * 15, (1,)),)).to_bytes()
    with pytest.raises(ValueError):
        M.Dri(70000).to_bytes()
    with pytest.raises(ValueError):
        M.App(16, b"").to_bytes()
    with pytest.raises(ValueError):
        M.Com(bytes(70000)).to_bytes()
