"""The one-kernel parser of plainly valid JPEG streams (``stream.parse_plain``) against the full parser.

``parse_plain`` is a fast path: on every stream it must either give exactly what ``parse_jpeg``
gives (sample precision, size, restart interval, scan bounds, quantization table, Huffman tables)
or decline (``None``), and it must decline every stream that ``parse_jpeg`` refuses or decodes
with a warning. Checked on our streams, libjpeg-turbo's (JFIF APP0, standard tables, restart
markers) and some thousands of damaged ones.
"""

from __future__ import annotations

import warnings

import imagecodecs
import numpy as np
import pytest

from medcodec.codec import _kernels as K
from medcodec.codec import entropy, jpeg
from medcodec.codec.stream import parse_jpeg, parse_plain
from medcodec.errors import CodecError, NonConformantStreamWarning


def _image(rows: int, cols: int, bits: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = (1 << bits) - 1
    y, x = np.mgrid[0:rows, 0:cols]
    v = top * (0.5 + 0.3 * np.sin(x / 5.0) * np.cos(y / 7.0)) + rng.normal(0, 0.02 * top, (rows, cols))
    return np.clip(np.rint(v), 0, top).astype(np.uint8 if bits <= 8 else np.uint16)


def _streams() -> list[bytes]:
    out = []
    for i, (rows, cols, bits) in enumerate([(64, 64, 12), (37, 53, 12), (8, 8, 8), (100, 9, 8), (162, 162, 12)]):
        a = _image(rows, cols, bits, i)
        for q in (20, 90):
            out.append(jpeg.encode_jpeg(a, bits_stored=bits, quality=q))
            out.append(jpeg.encode_jpeg(a, bits_stored=bits, quality=q, restart_interval=3))
        if bits == 8:
            out.append(imagecodecs.jpeg8_encode(a, level=75))  # JFIF APP0, standard tables, SOF0
        else:
            out.append(imagecodecs.jpeg8_encode(a, level=75, optimize=True))  # SOF1, 12-bit
    return out


def _decoders(jf) -> tuple[np.ndarray, np.ndarray]:
    max_dc, max_ac = entropy.max_categories(jf.P)
    return (
        jf.dc_table.decoder(size_bits=4, max_category=max_dc, ac=False),
        jf.ac_table.decoder(size_bits=4, max_category=max_ac, ac=True),
    )


def _agrees(buf: bytes) -> None:
    """``parse_plain(buf)`` is None, or equals what ``parse_jpeg`` gives; None whenever that refuses or warns."""
    plain = parse_plain(buf)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", NonConformantStreamWarning)
            jf = parse_jpeg(buf)
    except (CodecError, NonConformantStreamWarning):
        assert plain is None, "the fast path accepted a stream the full parser refuses or warns about"
        return
    if plain is None:
        return  # declining is always allowed (the full parser then decodes it)
    assert (plain.P, plain.Y, plain.X, plain.Ri) == (jf.P, jf.sof.Y, jf.sof.X, jf.Ri)
    assert (plain.scan_start, plain.scan_end) == (jf.scan_start, jf.scan_end)
    assert np.array_equal(plain.steps, jf.qtable.natural())
    dc, ac = _decoders(jf)
    assert np.array_equal(plain.dc_decoder[: dc.shape[0]], dc)
    assert np.array_equal(plain.ac_decoder[: ac.shape[0]], ac)


@pytest.mark.parametrize("index", range(25))
def test_valid_streams_take_the_fast_path_and_agree(index: int) -> None:
    buf = _streams()[index]
    assert parse_plain(buf) is not None
    _agrees(buf)


def test_fast_path_decodes_what_the_full_parser_decodes() -> None:
    """The pixels are the same whichever parser found the tables."""
    for buf in _streams():
        fast = jpeg.decode_jpeg(buf)
        jf = parse_jpeg(buf)
        from medcodec.codec.framecoder import FrameCoder

        dc, ac = _decoders(jf)
        slow = FrameCoder.for_table(jf.qtable.natural(), jf.P, False, ties_up=True).decode_with(
            buf, dc, ac, jf.sof.Y, jf.sof.X, size_bits=4, start=jf.scan_start, end=jf.scan_end, stuffed=True,
            restart_interval=jf.Ri,
        )  # fmt: skip
        assert np.array_equal(fast, slow)


def test_damaged_streams_agree_or_decline() -> None:
    """Single-byte changes, truncations and cut segments across the header: the fast path never accepts
    what the full parser refuses, and agrees with it on what both accept."""
    rng = np.random.default_rng(1501)
    accepted = declined = 0
    for buf in _streams():
        head = min(parse_jpeg(buf).scan_start + 8, len(buf))  # the header and the first bytes of the data
        for _ in range(120):
            b = bytearray(buf)
            kind = rng.integers(4)
            i = int(rng.integers(2, head))
            if kind == 0:
                b[i] = int(rng.integers(256))
            elif kind == 1:
                b[i] ^= 1 << int(rng.integers(8))
            elif kind == 2:
                del b[i:]
            else:
                del b[i : i + int(rng.integers(1, 6))]
            mutated = bytes(b)
            _agrees(mutated)
            if parse_plain(mutated) is None:
                declined += 1
            else:
                accepted += 1
    assert accepted > 0 and declined > 0  # both branches were exercised


@pytest.mark.parametrize(
    "change",
    [
        "se0",  # Se=0: a known deviation the full parser decodes with a warning
        "two_sof",
        "dnl_height",  # Y=0
        "three_components",
        "trailing_segment",  # a COM after the scan, before EOI: valid, left to the full parser
    ],
)
def test_unusual_layouts_decline(change: str) -> None:
    buf = bytearray(jpeg.encode_jpeg(_image(16, 16, 12, 0), bits_stored=12, quality=80))
    jf = parse_jpeg(bytes(buf))
    sof = next(s for s in jf.segments if s.type in ("SOF0", "SOF1")).offset
    sos = next(s for s in jf.segments if s.type == "SOS").offset
    if change == "se0":
        buf[sos + 8] = 0
    elif change == "two_sof":
        seg = bytes(buf[sof : sof + 13])
        buf[sof:sof] = seg
    elif change == "dnl_height":
        buf[sof + 5 : sof + 7] = b"\x00\x00"
    elif change == "three_components":
        buf[sof + 9] = 3
    elif change == "trailing_segment":
        buf[jf.scan_end : jf.scan_end] = b"\xff\xfe\x00\x04ok"
    assert parse_plain(bytes(buf)) is None
    _agrees(bytes(buf))
    if change == "trailing_segment":  # still decoded, by the full parser
        assert jpeg.decode_jpeg(bytes(buf)).shape == (16, 16)


def test_decoder_tables_fit_any_huffman_table() -> None:
    """The fast path's decoder arrays hold a table of 256 symbols (the most a DHT can define)."""
    assert K.DECODER_TABLE_SIZE == K._HUFFVAL + 256
