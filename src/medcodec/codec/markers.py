"""JPEG marker codes and one dataclass per marker segment (ISO/IEC 10918-1 = ITU-T T.81, Annex B).

Syntax of the segments implemented here (T.81 §B.2.4, §B.2.2, §B.2.3; every length
field counts itself but not the marker; all integers big-endian)::

    DQT  FFDB  Lq:16  { Pq:4 Tq:4  Q0..Q63 : 8 or 16 bits each (zigzag order) }+     §B.2.4.1
    DHT  FFC4  Lh:16  { Tc:4 Th:4  L1..L16:8  V(i,j):8 * sum(Li) }+                    §B.2.4.2
    DRI  FFDD  Lr:16=4  Ri:16                                                         §B.2.4.4
    SOFn FFCn  Lf:16  P:8 Y:16 X:16 Nf:8  { Ci:8 Hi:4 Vi:4 Tqi:8 } * Nf               §B.2.2
    SOS  FFDA  Ls:16  Ns:8 { Csj:8 Tdj:4 Taj:4 } * Ns  Ss:8 Se:8 Ah:4 Al:4            §B.2.3
    APPn FFEn  Lp:16  Ap1..Ap(Lp-2)                                                   §B.2.4.6
    COM  FFFE  Lc:16  Cm1..Cm(Lc-2)                                                   §B.2.4.5

Each class has ``from_bytes(data, offset=0)``, which reads one whole segment (marker
included) from ``data`` and checks every field against the ranges T.81 gives, and
``to_bytes()``, which writes it back: ``Cls.from_bytes(seg.to_bytes()) == seg``. Fields
keep T.81's symbols; ``offset`` is only used in error messages (the byte offset of the
marker in the enclosing stream). Parsing never raises anything but
:class:`~medcodec.errors.CorruptStreamError` / :class:`~medcodec.errors.TruncatedStreamError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ..errors import CorruptStreamError, InvalidInputError, TruncatedStreamError
from .zigzag import UNZIGZAG, ZIGZAG

if TYPE_CHECKING:
    from .entropy import HuffmanTable

__all__ = [
    "SOI",
    "EOI",
    "SOS",
    "DQT",
    "DHT",
    "DRI",
    "DNL",
    "DAC",
    "COM",
    "TEM",
    "SOF0",
    "SOF1",
    "RST0",
    "APP0",
    "MARKERS",
    "SOF_PROCESSES",
    "marker_name",
    "is_rst",
    "segment_bounds",
    "QuantizationTable",
    "Dqt",
    "HuffmanSpec",
    "Dht",
    "Dri",
    "FrameComponent",
    "Sof",
    "ScanComponent",
    "Sos",
    "App",
    "Com",
]

# -- Marker codes, T.81 Table B.1 ------------------------------------------------------
TEM = 0xFF01
SOF0 = 0xFFC0
SOF1 = 0xFFC1
DHT = 0xFFC4
JPG = 0xFFC8
DAC = 0xFFCC
RST0 = 0xFFD0
SOI = 0xFFD8
EOI = 0xFFD9
SOS = 0xFFDA
DQT = 0xFFDB
DNL = 0xFFDC
DRI = 0xFFDD
DHP = 0xFFDE
EXP = 0xFFDF
APP0 = 0xFFE0
COM = 0xFFFE

#: Process of every start-of-frame marker (T.81 Table B.1).
SOF_PROCESSES: dict[int, str] = {
    0xFFC0: "baseline sequential DCT, Huffman",
    0xFFC1: "extended sequential DCT, Huffman",
    0xFFC2: "progressive DCT, Huffman",
    0xFFC3: "lossless (sequential), Huffman",
    0xFFC5: "differential sequential DCT, Huffman (hierarchical)",
    0xFFC6: "differential progressive DCT, Huffman (hierarchical)",
    0xFFC7: "differential lossless, Huffman (hierarchical)",
    0xFFC9: "extended sequential DCT, arithmetic",
    0xFFCA: "progressive DCT, arithmetic",
    0xFFCB: "lossless (sequential), arithmetic",
    0xFFCD: "differential sequential DCT, arithmetic (hierarchical)",
    0xFFCE: "differential progressive DCT, arithmetic (hierarchical)",
    0xFFCF: "differential lossless, arithmetic (hierarchical)",
}

MARKERS: dict[int, str] = {
    TEM: "TEM",
    DHT: "DHT",
    JPG: "JPG",
    DAC: "DAC",
    SOI: "SOI",
    EOI: "EOI",
    SOS: "SOS",
    DQT: "DQT",
    DNL: "DNL",
    DRI: "DRI",
    DHP: "DHP",
    EXP: "EXP",
    COM: "COM",
}
MARKERS.update({code: f"SOF{code - SOF0}" for code in SOF_PROCESSES})
MARKERS.update({RST0 + m: f"RST{m}" for m in range(8)})
MARKERS.update({APP0 + n: f"APP{n}" for n in range(16)})
MARKERS.update({0xFFF0 + n: f"JPG{n}" for n in range(14)})


def marker_name(code: int) -> str:
    """Name of a marker code (``0xFFC1`` -> ``"SOF1"``); ``RES`` for reserved codes (T.81 Table B.1)."""
    return MARKERS.get(code, f"RES(0x{code:04X})")


def is_rst(code: int) -> bool:
    """True for RST0..RST7 (T.81 §B.2.1)."""
    return RST0 <= code <= RST0 + 7


def segment_bounds(data: bytes | memoryview, offset: int, name: str | None = None) -> int:
    """End (exclusive) of the length-prefixed marker segment whose marker starts at ``offset``.

    Raises
    ------
    TruncatedStreamError
        The length field, or the segment it announces, runs past the end of ``data``.
    CorruptStreamError
        The length field is smaller than 2 (T.81 §B.1.1.4).
    """
    code = (data[offset] << 8 | data[offset + 1]) if offset + 1 < len(data) else None
    name = name or (marker_name(code) if code is not None else "marker")
    if offset + 4 > len(data):
        raise TruncatedStreamError(
            "length field cut off (T.81 §B.1.1.4)", offset=offset, segment=name, expected=4,
            available=max(0, len(data) - offset),
        )  # fmt: skip
    length = data[offset + 2] << 8 | data[offset + 3]
    if length < 2:
        raise CorruptStreamError(
            f"length field is {length}, expected >= 2 (T.81 §B.1.1.4)", offset=offset, segment=name
        )
    if offset + 2 + length > len(data):
        raise TruncatedStreamError(
            f"segment announces {length} bytes after its marker (T.81 §B.1.1.4)", offset=offset, segment=name,
            expected=2 + length, available=len(data) - offset,
        )  # fmt: skip
    return offset + 2 + length


def _pack_segment(marker: int, payload: bytes) -> bytes:
    if len(payload) + 2 > 0xFFFF:
        raise InvalidInputError(
            f"{marker_name(marker)} payload of {len(payload)} bytes does not fit a 16-bit length field"
        )
    return struct.pack(">HH", marker, len(payload) + 2) + payload


class _Reader:
    """Checked reads inside one segment payload: every shortfall is a CorruptStreamError."""

    def __init__(self, payload: memoryview, offset: int, name: str, section: str):
        self.p = payload
        self.pos = 0
        self.offset = offset
        self.name = name
        self.section = section

    def need(self, n: int, what: str) -> None:
        if self.pos + n > len(self.p):
            raise CorruptStreamError(
                f"length field leaves {len(self.p) - self.pos} bytes for {what}, {n} needed (T.81 {self.section})",
                offset=self.offset + 4 + self.pos, segment=self.name,
            )  # fmt: skip

    def u8(self, what: str) -> int:
        self.need(1, what)
        v = self.p[self.pos]
        self.pos += 1
        return int(v)

    def u16(self, what: str) -> int:
        self.need(2, what)
        v = self.p[self.pos] << 8 | self.p[self.pos + 1]
        self.pos += 2
        return int(v)

    def nibbles(self, what: str) -> tuple[int, int]:
        v = self.u8(what)
        return v >> 4, v & 15

    def raw(self, n: int, what: str) -> bytes:
        self.need(n, what)
        v = bytes(self.p[self.pos : self.pos + n])
        self.pos += n
        return v

    @property
    def remaining(self) -> int:
        return len(self.p) - self.pos

    def done(self) -> None:
        if self.pos != len(self.p):
            raise CorruptStreamError(
                f"{len(self.p) - self.pos} bytes left over after the last field (T.81 {self.section})",
                offset=self.offset + 4 + self.pos, segment=self.name,
            )  # fmt: skip

    def fail(self, message: str) -> CorruptStreamError:
        return CorruptStreamError(f"{message} (T.81 {self.section})", offset=self.offset, segment=self.name)


def _payload(data: bytes | bytearray | memoryview, offset: int, marker: int, name: str) -> memoryview:
    mv = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
    if len(mv) < 2:
        raise TruncatedStreamError("marker cut off", offset=offset, segment=name, expected=2, available=len(mv))
    code = mv[0] << 8 | mv[1]
    if code != marker:
        raise CorruptStreamError(
            f"marker is {marker_name(code)} (0x{code:04X}), expected {name} (T.81 Table B.1)",
            offset=offset,
            segment=name,
        )
    try:
        end = segment_bounds(mv, 0, name)
    except TruncatedStreamError as e:
        raise TruncatedStreamError(
            "segment cut off (T.81 §B.1.1.4)", offset=offset, segment=name, expected=e.expected, available=e.available
        ) from None
    except CorruptStreamError:
        raise CorruptStreamError("length field < 2 (T.81 §B.1.1.4)", offset=offset, segment=name) from None
    return mv[4:end]


# -- DQT ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantizationTable:
    """One table of a DQT segment (T.81 §B.2.4.1).

    Attributes
    ----------
    Pq
        Element precision: 0 for 8-bit Qk, 1 for 16-bit Qk (not allowed when P = 8).
    Tq
        Destination identifier 0..3.
    Q
        The 64 elements Q0..Q63 in zigzag order, each >= 1.
    """

    Pq: int
    Tq: int
    Q: tuple[int, ...]

    @classmethod
    def from_steps(cls, steps: np.ndarray, *, Tq: int = 0) -> QuantizationTable:
        """Table for natural-order ``steps``, with the smallest ``Pq`` that holds them."""
        zz = np.asarray(steps)[ZIGZAG]
        return cls(Pq=int(int(zz.max()) > 255), Tq=Tq, Q=tuple(int(v) for v in zz))

    def natural(self) -> np.ndarray:
        """The steps in natural (row-major) order, uint16."""
        return np.asarray(self.Q, dtype=np.uint16)[UNZIGZAG]


@dataclass(frozen=True)
class Dqt:
    """Define quantization tables, T.81 §B.2.4.1: one or more tables per segment."""

    marker: ClassVar[int] = DQT
    tables: tuple[QuantizationTable, ...]

    @property
    def Lq(self) -> int:
        return 2 + sum(65 + 64 * t.Pq for t in self.tables)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> Dqt:
        r = _Reader(_payload(data, offset, DQT, "DQT"), offset, "DQT", "§B.2.4.1")
        tables = []
        while r.remaining:
            Pq, Tq = r.nibbles("Pq/Tq")
            if Pq > 1:
                raise r.fail(f"Pq={Pq} is invalid, expected 0 or 1")
            if Tq > 3:
                raise r.fail(f"Tq={Tq} is invalid, expected 0..3")
            raw = r.raw(64 << Pq, f"table {Tq} elements")
            Q = struct.unpack(">64H", raw) if Pq else tuple(raw)
            if min(Q) == 0:
                raise r.fail(f"table {Tq} has a zero element Q{Q.index(0)}, expected >= 1")
            tables.append(QuantizationTable(Pq, Tq, Q))
        if not tables:
            raise r.fail("DQT defines no table")
        return cls(tuple(tables))

    def to_bytes(self) -> bytes:
        parts = []
        for t in self.tables:
            if t.Pq not in (0, 1) or not 0 <= t.Tq <= 3 or len(t.Q) != 64:
                raise InvalidInputError(f"invalid quantization table Pq={t.Pq} Tq={t.Tq} with {len(t.Q)} elements")
            limit = 0xFFFF if t.Pq else 0xFF
            if min(t.Q) < 1 or max(t.Q) > limit:
                raise InvalidInputError(f"quantization table {t.Tq}: elements must lie in 1..{limit} for Pq={t.Pq}")
            parts.append(bytes([t.Pq << 4 | t.Tq]) + np.asarray(t.Q, dtype=">u2" if t.Pq else np.uint8).tobytes())
        return _pack_segment(DQT, b"".join(parts))


# -- DHT ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HuffmanSpec:
    """One table of a DHT segment (T.81 §B.2.4.2).

    Attributes
    ----------
    Tc
        Table class: 0 DC (or lossless), 1 AC.
    Th
        Destination identifier 0..3.
    L
        L1..L16: number of codes of each length (T.81's ``BITS``).
    V
        V(i,j): the symbol values in order of increasing code length (``HUFFVAL``).
    """

    Tc: int
    Th: int
    L: tuple[int, ...]
    V: tuple[int, ...]

    @classmethod
    def from_table(cls, table: HuffmanTable, *, Tc: int, Th: int = 0) -> HuffmanSpec:
        """From an :class:`~medcodec.codec.entropy.HuffmanTable` (``bits`` / ``huffval``)."""
        return cls(Tc, Th, tuple(int(v) for v in table.bits), tuple(int(v) for v in table.huffval))

    def to_table(self) -> HuffmanTable:
        """As an :class:`~medcodec.codec.entropy.HuffmanTable` (not validated: see ``validate``)."""
        from .entropy import HuffmanTable

        return HuffmanTable(np.asarray(self.L, dtype=np.int32), np.asarray(self.V, dtype=np.int32))


@dataclass(frozen=True)
class Dht:
    """Define Huffman tables, T.81 §B.2.4.2: one or more tables per segment."""

    marker: ClassVar[int] = DHT
    tables: tuple[HuffmanSpec, ...]

    @property
    def Lh(self) -> int:
        return 2 + sum(17 + len(t.V) for t in self.tables)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> Dht:
        r = _Reader(_payload(data, offset, DHT, "DHT"), offset, "DHT", "§B.2.4.2")
        tables = []
        while r.remaining:
            Tc, Th = r.nibbles("Tc/Th")
            if Tc > 1:
                raise r.fail(f"Tc={Tc} is invalid, expected 0 (DC) or 1 (AC)")
            if Th > 3:
                raise r.fail(f"Th={Th} is invalid, expected 0..3")
            L = tuple(r.raw(16, "L1..L16"))
            n = sum(L)
            if n > 256:
                raise r.fail(f"L1..L16 count {n} codes, at most 256 are possible")
            V = tuple(r.raw(n, f"{n} symbol values V(i,j)"))
            tables.append(HuffmanSpec(Tc, Th, L, V))
        if not tables:
            raise r.fail("DHT defines no table")
        return cls(tuple(tables))

    def to_bytes(self) -> bytes:
        parts = []
        for t in self.tables:
            if t.Tc not in (0, 1) or not 0 <= t.Th <= 3 or len(t.L) != 16 or sum(t.L) != len(t.V):
                raise InvalidInputError(
                    f"invalid Huffman table Tc={t.Tc} Th={t.Th}: sum(L)={sum(t.L)}, {len(t.V)} values"
                )
            if t.V and not 0 <= min(t.V) <= max(t.V) <= 255:
                raise InvalidInputError(f"Huffman table Tc={t.Tc} Th={t.Th}: symbol values must be bytes")
            parts.append(bytes([t.Tc << 4 | t.Th]) + bytes(t.L) + bytes(t.V))
        return _pack_segment(DHT, b"".join(parts))


# -- DRI ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dri:
    """Define restart interval, T.81 §B.2.4.4: ``Ri`` MCUs per interval, 0 disables restarts."""

    marker: ClassVar[int] = DRI
    Ri: int

    Lr: ClassVar[int] = 4

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> Dri:
        p = _payload(data, offset, DRI, "DRI")
        if len(p) != 2:
            raise CorruptStreamError(
                f"Lr={len(p) + 2} is invalid, expected 4 (T.81 §B.2.4.4)", offset=offset, segment="DRI"
            )
        return cls(p[0] << 8 | p[1])

    def to_bytes(self) -> bytes:
        if not 0 <= self.Ri <= 0xFFFF:
            raise InvalidInputError(f"Ri={self.Ri} does not fit 16 bits")
        return _pack_segment(DRI, struct.pack(">H", self.Ri))


# -- SOF ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameComponent:
    """Component specification of a frame header: Ci, Hi, Vi, Tqi (T.81 §B.2.2)."""

    Ci: int
    Hi: int = 1
    Vi: int = 1
    Tqi: int = 0


@dataclass(frozen=True)
class Sof:
    """Frame header, T.81 §B.2.2, for any SOFn (``marker``); field ranges per Table B.2.

    Attributes
    ----------
    marker
        The SOFn code (``SOF0`` baseline, ``SOF1`` extended sequential Huffman...).
    P
        Sample precision (8 or 12 for DCT processes, 2..16 for lossless).
    Y, X
        Number of lines and of samples per line; ``Y = 0`` means a DNL segment gives it.
    components
        One :class:`FrameComponent` per component (``Nf`` of them).
    """

    marker: int
    P: int
    Y: int
    X: int
    components: tuple[FrameComponent, ...]

    @property
    def Nf(self) -> int:
        return len(self.components)

    @property
    def Lf(self) -> int:
        return 8 + 3 * self.Nf

    @property
    def process(self) -> str:
        return SOF_PROCESSES.get(self.marker, "unknown")

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> Sof:
        mv = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
        code = (mv[0] << 8 | mv[1]) if len(mv) >= 2 else 0
        if code not in SOF_PROCESSES:
            if len(mv) < 2:
                raise TruncatedStreamError(
                    "marker cut off", offset=offset, segment="SOF", expected=2, available=len(mv)
                )
            raise CorruptStreamError(
                f"marker {marker_name(code)} is not a start of frame (T.81 Table B.1)", offset=offset, segment="SOF"
            )
        name = marker_name(code)
        r = _Reader(_payload(mv, offset, code, name), offset, name, "§B.2.2")
        P = r.u8("P")
        Y = r.u16("Y")
        X = r.u16("X")
        Nf = r.u8("Nf")
        if Nf == 0:
            raise r.fail("Nf=0, expected 1..255 components")
        if r.remaining != 3 * Nf:
            raise r.fail(f"Lf={len(r.p) + 2} does not match Nf={Nf}: expected Lf={8 + 3 * Nf}")
        if X == 0:
            raise r.fail("X=0 samples per line, expected 1..65535")
        comps = []
        for _ in range(Nf):
            Ci = r.u8("Ci")
            Hi, Vi = r.nibbles("Hi/Vi")
            Tqi = r.u8("Tqi")
            if not (1 <= Hi <= 4 and 1 <= Vi <= 4):
                raise r.fail(f"component {Ci}: sampling factors Hi={Hi}, Vi={Vi}, expected 1..4")
            if Tqi > 3:
                raise r.fail(f"component {Ci}: Tqi={Tqi}, expected 0..3")
            comps.append(FrameComponent(Ci, Hi, Vi, Tqi))
        if len({c.Ci for c in comps}) != Nf:
            raise r.fail("two components share an identifier Ci")
        return cls(code, P, Y, X, tuple(comps))

    def to_bytes(self) -> bytes:
        if (
            self.marker not in SOF_PROCESSES
            or not (0 <= self.Y <= 0xFFFF and 1 <= self.X <= 0xFFFF)
            or not 1 <= self.Nf <= 255
        ):
            raise InvalidInputError(f"invalid frame header {self}")
        body = struct.pack(">BHHB", self.P, self.Y, self.X, self.Nf) + b"".join(
            bytes([c.Ci, c.Hi << 4 | c.Vi, c.Tqi]) for c in self.components
        )
        return _pack_segment(self.marker, body)


# -- SOS ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanComponent:
    """Scan component selector and its entropy table selectors: Csj, Tdj, Taj (T.81 §B.2.3)."""

    Cs: int
    Td: int = 0
    Ta: int = 0


@dataclass(frozen=True)
class Sos:
    """Scan header, T.81 §B.2.3.

    ``Ss``/``Se`` select the spectral band (0/63 for sequential DCT), ``Ah``/``Al`` the
    successive-approximation bit positions (0/0 for sequential DCT).
    """

    marker: ClassVar[int] = SOS
    components: tuple[ScanComponent, ...]
    Ss: int = 0
    Se: int = 63
    Ah: int = 0
    Al: int = 0

    @property
    def Ns(self) -> int:
        return len(self.components)

    @property
    def Ls(self) -> int:
        return 6 + 2 * self.Ns

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> Sos:
        r = _Reader(_payload(data, offset, SOS, "SOS"), offset, "SOS", "§B.2.3")
        Ns = r.u8("Ns")
        if not 1 <= Ns <= 4:
            raise r.fail(f"Ns={Ns}, expected 1..4 components in a scan")
        if r.remaining != 2 * Ns + 3:
            raise r.fail(f"Ls={len(r.p) + 2} does not match Ns={Ns}: expected Ls={6 + 2 * Ns}")
        comps = []
        for _ in range(Ns):
            Cs = r.u8("Cs")
            Td, Ta = r.nibbles("Td/Ta")
            if Td > 3 or Ta > 3:
                raise r.fail(f"component {Cs}: Td={Td}, Ta={Ta}, expected 0..3")
            comps.append(ScanComponent(Cs, Td, Ta))
        Ss = r.u8("Ss")
        Se = r.u8("Se")
        Ah, Al = r.nibbles("Ah/Al")
        return cls(tuple(comps), Ss, Se, Ah, Al)

    def to_bytes(self) -> bytes:
        if not 1 <= self.Ns <= 4:
            raise InvalidInputError(f"Ns={self.Ns}, expected 1..4")
        body = bytes([self.Ns]) + b"".join(bytes([c.Cs, c.Td << 4 | c.Ta]) for c in self.components)
        return _pack_segment(SOS, body + bytes([self.Ss, self.Se, self.Ah << 4 | self.Al]))


# -- APPn, COM -----------------------------------------------------------------------------


@dataclass(frozen=True)
class App:
    """Application data segment APPn, T.81 §B.2.4.6: ``n`` 0..15 and the bytes Ap1..Ap(Lp-2)."""

    n: int
    data: bytes

    @property
    def marker(self) -> int:
        return APP0 + self.n

    @property
    def Lp(self) -> int:
        return 2 + len(self.data)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> App:
        mv = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
        code = (mv[0] << 8 | mv[1]) if len(mv) >= 2 else 0
        if not APP0 <= code <= APP0 + 15:
            if len(mv) < 2:
                raise TruncatedStreamError(
                    "marker cut off", offset=offset, segment="APPn", expected=2, available=len(mv)
                )
            raise CorruptStreamError(
                f"marker {marker_name(code)} is not APPn (T.81 §B.2.4.6)", offset=offset, segment="APPn"
            )
        return cls(code - APP0, bytes(_payload(mv, offset, code, marker_name(code))))

    def to_bytes(self) -> bytes:
        if not 0 <= self.n <= 15:
            raise InvalidInputError(f"APP{self.n} does not exist")
        return _pack_segment(self.marker, self.data)


@dataclass(frozen=True)
class Com:
    """Comment segment, T.81 §B.2.4.5: the bytes Cm1..Cm(Lc-2)."""

    marker: ClassVar[int] = COM
    data: bytes

    @property
    def Lc(self) -> int:
        return 2 + len(self.data)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> Com:
        return cls(bytes(_payload(data, offset, COM, "COM")))

    def to_bytes(self) -> bytes:
        return _pack_segment(COM, self.data)
