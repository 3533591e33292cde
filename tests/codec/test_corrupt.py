"""Damaged streams raise only medcodec.CodecError subclasses, quickly (never IndexError, a crash or a hang)."""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np
import pytest

import medcodec
from medcodec.codec import container


@pytest.fixture(scope="module")
def stream() -> bytes:
    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:70, 0:90]
    img = np.stack([(2000 + 800 * np.sin(x / 9.0 + k) * np.cos(y / 7.0) + rng.normal(0, 30, x.shape)) for k in range(3)])
    data = medcodec.encode(np.clip(img, 0, 4095).astype(np.uint16), bits_stored=12, quality=85, entropy="huffman")
    medcodec.decode(data)  # compile the decoder here (a cold numba cache), not inside a timed decode
    return data


def decode_all(data: bytes) -> None:
    medcodec.decode(data)


def assert_codec_error_fast(data: bytes) -> BaseException | None:
    t = time.perf_counter()
    try:
        decode_all(data)
        return None
    except medcodec.CodecError as exc:
        return exc
    finally:
        assert time.perf_counter() - t < 5


def test_truncation_sweep_every_32nd(stream: bytes) -> None:
    for k in range(32):
        cut = stream[: len(stream) * k // 32]
        exc = assert_codec_error_fast(cut)
        assert exc is not None, f"truncated to {len(cut)} bytes decoded without error"
    # also every single length in the headers
    for n in range(0, 400):
        assert assert_codec_error_fast(stream[:n]) is not None


def test_truncated_error_says_where(stream: bytes) -> None:
    with pytest.raises(medcodec.TruncatedStreamError) as info:
        medcodec.decode(stream[: len(stream) // 2])
    assert info.value.offset is not None


def test_random_byte_flips(stream: bytes) -> None:
    rng = np.random.default_rng(1)
    errors = 0
    for _ in range(500):
        buf = bytearray(stream)
        for pos in rng.integers(0, len(buf), rng.integers(1, 4)):
            buf[pos] ^= int(rng.integers(1, 256))
        exc = assert_codec_error_fast(bytes(buf))
        errors += exc is not None
    # every flip lands in a CRC-protected segment or the signature: all must be caught
    assert errors == 500


def _rewrite_head(stream: bytes, fmt_offset: int, fmt: str, value: object) -> bytes:
    """Change one HEAD field and fix the CRC, so the field itself is what is checked."""
    buf = bytearray(stream)
    head_payload = 8 + 8
    struct.pack_into(fmt, buf, head_payload + fmt_offset, value)
    length = struct.unpack_from("<I", buf, 8)[0]
    crc = zlib.crc32(bytes(buf[12 : 16 + length]))
    struct.pack_into("<I", buf, 16 + length, crc)
    return bytes(buf)


@pytest.mark.parametrize(
    "offset, fmt, value, error",
    [
        (4, "<I", 65535, medcodec.CorruptStreamError),      # rows, no longer matches frames' data
        (8, "<I", 0, medcodec.CorruptStreamError),          # cols 0
        (4, "<I", 70000, medcodec.CorruptStreamError),      # rows over the limit
        (12, "<I", 65535, medcodec.CorruptStreamError),     # frames, FIDX disagrees
        (16, "<B", 17, medcodec.CorruptStreamError),        # bits_stored
        (17, "<B", 2, medcodec.CorruptStreamError),         # signed flag
        (18, "<B", 9, medcodec.CorruptStreamError),         # photometric code
        (0, "<H", 2, medcodec.UnsupportedFeatureError),     # future major version
        (19, "<B", 3, medcodec.UnsupportedFeatureError),    # unknown transform
        (24, "<d", 0.0, medcodec.CorruptStreamError),       # rescale slope 0
    ],
)
def test_tampered_header_fields(stream: bytes, offset: int, fmt: str, value: object, error: type) -> None:
    with pytest.raises(error):
        medcodec.decode(_rewrite_head(stream, offset, fmt, value))


@pytest.mark.parametrize("rows, cols, frames", [(65535, 65535, 65535), (16384, 16384, 65535), (8, 8, 65535)])
def test_decompression_bomb_header_is_refused_before_allocation(rows: int, cols: int, frames: int) -> None:
    """A hand-made stream whose HEAD claims a huge image and whose FIDX lists nothing."""
    header = container.MdcHeader(rows=rows, cols=cols, frames=frames, bits_stored=16, signed=False)
    data = (
        container.SIGNATURE
        + container._segment(b"HEAD", container._head_payload(header))
        + container._segment(b"QTAB", bytes([1]) + np.ones(64, "<u2").tobytes())
        + container._segment(b"FIDX", struct.pack("<I", frames))
    )
    t = time.perf_counter()
    with pytest.raises(medcodec.CorruptStreamError, match="limit|FIDX"):
        medcodec.decode(data)
    assert time.perf_counter() - t < 1


def test_checksum_mismatch_is_reported(stream: bytes) -> None:
    buf = bytearray(stream)
    buf[-30] ^= 0x40  # inside the last FRAM payload
    with pytest.raises(medcodec.ChecksumMismatchError) as info:
        medcodec.decode(bytes(buf))
    assert info.value.segment == "FRAM" and info.value.expected != info.value.actual


def test_not_a_stream() -> None:
    for junk in (b"", b"hello world", b"\x89MDC", bytes(100)):
        with pytest.raises(medcodec.CodecError):
            medcodec.decode(junk)
    with pytest.raises(medcodec.InvalidInputError):
        medcodec.decode("not bytes")  # type: ignore[arg-type]
    with pytest.raises(medcodec.InvalidInputError):
        medcodec.decode(medcodec.encode(np.zeros((8, 8), np.uint8), bits_stored=8), frames=3)


def _splice_segment(stream: bytes, seg: bytes) -> bytes:
    """Insert a segment after QTAB and shift the FIDX offsets (CRC recomputed)."""
    header, index = container.parse_container(stream)
    at = header.segments[1].end
    fidx = next(s for s in header.segments if s.type == "FIDX")
    payload = struct.pack("<I", len(index)) + b"".join(struct.pack("<QI", o + len(seg), n) for o, n in index)
    new_fidx = container._segment(b"FIDX", payload)
    return stream[:at] + seg + stream[at : fidx.offset] + new_fidx + stream[fidx.end :]


def test_unknown_ancillary_segment_is_skipped_critical_is_not(stream: bytes) -> None:
    expected = medcodec.decode(stream)
    spliced = _splice_segment(stream, container._segment(b"zzzz", b"future ancillary data"))
    np.testing.assert_array_equal(medcodec.decode(spliced), expected)
    with pytest.raises(medcodec.CorruptStreamError, match="critical"):
        medcodec.decode(_splice_segment(stream, container._segment(b"ZZZZ", b"future critical data")))
