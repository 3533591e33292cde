"""A mutation fuzzer for the decoders: the harness the test suite runs briefly, runnable for longer.

Each input is a stream from a corpus (``.mdc`` and JPEG) with a few mutations drawn by
hypothesis: bit flips, integer fields overwritten with boundary values, ranges deleted or
duplicated, segments spliced in from another stream, truncation. For ``.mdc`` the CRC-32 of
every complete segment is then usually repaired, so the damage reaches the tables and coded
data instead of stopping at the checksum. The property (:func:`check_stream`): ``decode`` and
``read_header`` either raise :class:`~medcodec.errors.CodecError` or return what the header
announces, within a time bound; anything else (``IndexError``, ``RecursionError``,
``MemoryError``, a hang) is a finding.

Run for longer (under a 3 GB address-space limit by default, so a decompression bomb shows
up as a finding instead of swapping the machine)::

    python -m medcodec.testing.fuzz --examples 200000 --crashes fuzz-crashes/

Hypothesis keeps what it found in ``--database`` (default ``.hypothesis/fuzz``) and replays
it first on the next run; a finding is written to ``--crashes`` as ``<sha1>.bin`` with the
exception in ``<sha1>.txt``. Make each one a named reproducer in ``tests/data/``.
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import sys
import time
import traceback
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError as exc:  # a plain install: hypothesis comes with the [test] extra
    raise ImportError("medcodec.testing.fuzz needs hypothesis: pip install 'medcodec[test]' (or hypothesis)") from exc

from ..errors import CodecError

__all__ = ["SIGNATURE", "default_corpus", "repair_crcs", "mutations", "apply_mutations", "fuzzed_streams",
           "check_stream", "Finding", "main"]  # fmt: skip

SIGNATURE = b"\x89MDC\r\n\x1a\n"
#: Seconds one decode may take before it counts as a hang (small streams decode in ms).
TIME_LIMIT = 5.0
#: Values an overwritten integer field takes: the boundaries decoders get wrong.
INTERESTING = (0, 1, 2, 7, 8, 15, 16, 17, 63, 64, 127, 128, 255, 256, 4095, 32767, 32768, 65535, 65536,
               2**31 - 1, 2**31, 2**32 - 1)  # fmt: skip


class Finding(AssertionError):
    """A decoder broke the property on ``data``; ``cause`` is what escaped (or why it failed)."""

    def __init__(self, message: str, data: bytes):
        super().__init__(message)
        self.data = data


def default_corpus(extra: Sequence[Path] = ()) -> list[bytes]:
    """Seed streams: small fresh encodes of synthetic images covering the formats' paths
    (8/12/16-bit, signed, 2-D with ``meta``, multi-frame, JPEG baseline/extended, restart
    intervals, ``.mdc`` 2.0 predictive and range-coded DCT, 2.1 multi-symbol DCT, 2.2 intra, 2.3 padding
    masks, 2.4 compact layout and mode model 2, 2.5-2.6 intra tools, 2.7 run mode, 2.8 modular levels,
    2.9 packed frames, 2.10 compact predictive streams, 2.11 within-block level contexts, 2.12 trained
    starts), plus every
    ``*.mdc`` / ``*.jpg`` / ``*.bin`` file under the ``extra`` folders."""
    from unittest.mock import patch  # an encoder switch set for some seeds, restored after them

    from ..codec import container, encode, mdc2
    from ..codec import intra as intra_mod
    from ..codec.intra import written_mode_model

    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:24, 0:40]

    def img(bits: int, signed: bool, frames: int) -> np.ndarray:
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        a = lo + (hi - lo) * (0.3 + 0.4 * np.sin(x / 5.0 + np.arange(frames)[:, None, None]) * np.cos(y / 4.0) ** 2)
        a = a + rng.normal(0, (hi - lo) * 0.01, a.shape)
        dtype = (np.int8 if signed else np.uint8) if bits <= 8 else (np.int16 if signed else np.uint16)
        return np.clip(np.rint(a), lo, hi).astype(dtype)

    v1 = "huffman"  # format 1.0 (the .mdc default until 2026-11-30)
    padded = img(16, True, 2)
    padded[:, :, :5] = -32768  # padding columns, signalled by a mask (format 2.3)
    corpus = [
        encode(img(12, False, 3), bits_stored=12, quality=80, entropy=v1),
        encode(img(16, True, 2), bits_stored=16, quality=60, entropy=v1),
        encode(img(8, False, 1)[0], bits_stored=8, quality=95, entropy=v1),  # 2-D: carries meta {"ndim": 2}
        encode(img(10, False, 1), bits_stored=10, quality=30, ancillary={"zzzz": b"ancillary payload"}, entropy=v1),
        encode(img(8, False, 1)[0], bits_stored=8, quality=70, format="jpeg"),
        encode(img(12, False, 1)[0], bits_stored=12, quality=85, format="jpeg", restart_interval=2),
        # .mdc 2.0: predictive (lossless, near-lossless) and range-coded DCT frames
        encode(img(16, True, 2), bits_stored=16, max_error=0, compact=False),
        encode(img(12, False, 1)[0], bits_stored=12, max_error=2, compact=False),
        encode(img(12, False, 2), bits_stored=12, quality=75, entropy="arith-binary"),  # 2.0, binary coder
        # .mdc 2.1: DCT levels by the multi-symbol range coder (escapes: 16-bit signed at quality 97)
        encode(img(12, False, 2), bits_stored=12, quality=75, entropy="arith-multi", intra=False, compact=False),
        encode(
            img(16, True, 1), bits_stored=16, signed=True, quality=97, entropy="arith-multi", intra=False, compact=False
        ),
    ]
    with written_mode_model(1):  # formats 2.2 and 2.3 as written before mode model 2 (2.4) was the default
        corpus += [
            # .mdc 2.2: intra-predicted DCT frames (modes, residual levels, 2.1's filters)
            encode(img(12, False, 2), bits_stored=12, quality=75, intra=True, compact=False),
            encode(img(16, True, 1)[:, :21, :30], bits_stored=16, signed=True, quality=95, intra=True, compact=False),
            # .mdc 2.3: the multi-symbol coder with padding masks, long layout
            encode(padded, bits_stored=16, signed=True, quality=70, padding=(-32768, -32768), compact=False),
        ]
    flat = img(12, False, 2)
    flat[:, 8:, 16:] = 1000  # blocks with flat references: no mode coded
    with patch.object(intra_mod, "BIG_EFFORTS", ()):
        with patch.object(intra_mod, "TX_EFFORTS", ()):
            corpus += [
                # .mdc 2.4, the default before tx25: the compact layout (2-D as a HEAD flag, 3 frames,
                # padding masks) and intra frames with mode model 2; one long-layout stream with mode model 2
                encode(img(12, False, 1)[0], bits_stored=12, quality=60),
                encode(img(12, False, 3), bits_stored=12, quality=75, intra=False),
                encode(padded, bits_stored=16, signed=True, quality=70, padding=(-32768, -32768)),
                encode(flat, bits_stored=12, quality=60),
                encode(padded, bits_stored=16, signed=True, quality=90, padding=(-32768, -32768), compact=False),
            ]
        corpus += [
            # .mdc 2.5, the default from tx25 to big26: 2.4 with the intra residuals' transform choice
            # (FRAM flag 128), compact and long, fast and best
            encode(flat, bits_stored=12, quality=45),
            encode(padded, bits_stored=16, signed=True, quality=80, padding=(-32768, -32768), effort="best"),
            encode(img(12, False, 1)[0], bits_stored=12, quality=85, compact=False),
        ]
    # .mdc 2.6, the default from big26 to 2026-12-04 (2.5 with 16x16 blocks, FRAM flag 256 compact, 64
    # long), 2.11, the default after it (2.6's frames, their levels under within-block contexts, §21),
    # and 2.12, the default since (every context of 2.11's frames from trained starts, §22): the same three images
    # each, compact and long, fast and best
    for within, trained in (((), ()), (intra_mod.WITHIN_EFFORTS, ()),
                            (intra_mod.WITHIN_EFFORTS, intra_mod.TRAINED_EFFORTS)):  # fmt: skip
        with patch.object(intra_mod, "WITHIN_EFFORTS", within), patch.object(intra_mod, "TRAINED_EFFORTS", trained):
            corpus += [
                encode(flat, bits_stored=12, quality=40),
                encode(padded, bits_stored=16, signed=True, quality=75, padding=(-32768, -32768), effort="best"),
                encode(img(12, False, 1)[0], bits_stored=12, quality=80, compact=False),
            ]
    # .mdc 2.7: predictive frames in run mode (black surroundings with labels; the encoder picks runs
    # for these, lossless and near-lossless); 2.8, the default: the same with modular levels and run
    # contexts from the row above
    labels = img(8, False, 2)
    labels[:, :, 20:] = 0
    labels[:, 3:6, 24:38:3] = 230
    for version in (container.VERSION_27, container.VERSION_28):
        with patch.object(mdc2, "PREDICTIVE_VERSION", version):
            corpus += [encode(labels, bits_stored=8, max_error=0), encode(labels[0], bits_stored=8, max_error=1)]
    # .mdc 2.9: lossless frames with sparse histograms are packed (a table of their values), long layout
    sparse = (img(10, False, 2) // 64 * 256).astype(np.uint16)  # 16 levels, 256 apart
    corpus += [encode(sparse, bits_stored=12, max_error=0, compact=False),
               encode(sparse[0], bits_stored=12, max_error=0, compact=False)]  # fmt: skip
    # .mdc 2.10, the default: the same tools in the compact layout (varint FRAM fields, §20): packed,
    # run mode lossless and near-lossless, 16-bit signed frames
    corpus += [
        encode(sparse, bits_stored=12, max_error=0),
        encode(labels, bits_stored=8, max_error=0),
        encode(labels[0], bits_stored=8, max_error=1),
        encode(img(16, True, 2), bits_stored=16, max_error=3),
    ]
    for folder in extra:
        for path in sorted(Path(folder).glob("*")):
            if path.suffix.lower() in (".mdc", ".jpg", ".jpeg", ".bin") and path.stat().st_size <= 1 << 20:
                corpus.append(path.read_bytes())
    return corpus


def repair_crcs(data: bytes) -> bytes:
    """Recompute the CRC-32 of every complete ``.mdc`` segment (walking LENGTH fields from the
    signature on; stops at the first segment that does not fit)."""
    if not data.startswith(SIGNATURE):
        return data
    buf = bytearray(data)
    pos = len(SIGNATURE)
    while pos + 12 <= len(buf):
        (length,) = struct.unpack_from("<I", buf, pos)
        end = pos + 8 + length
        if end + 4 > len(buf):
            break
        struct.pack_into("<I", buf, end, zlib.crc32(bytes(buf[pos + 4 : end])))
        pos = end + 4
    return bytes(buf)


#: One mutation: (kind, position fraction numerator out of 2**32, width/value index, payload).
Mutation = tuple[str, int, int, bytes]


def mutations() -> st.SearchStrategy[list[Mutation]]:
    """1-4 mutations, each drawn so that hypothesis can shrink it."""
    kind = st.sampled_from(["flip", "field", "delete", "duplicate", "insert", "truncate", "splice"])
    one = st.tuples(kind, st.integers(0, 2**32 - 1), st.integers(0, 255), st.binary(max_size=24))
    return st.lists(one, min_size=1, max_size=4)


def apply_mutations(data: bytes, muts: Sequence[Mutation], donor: bytes = b"") -> bytes:
    """``data`` with ``muts`` applied in order (positions scaled to the current length; the
    signature is left alone half the time so most inputs get past it)."""
    buf = bytearray(data)
    for kind, where, k, payload in muts:
        n = len(buf)
        if n == 0:
            break
        start = 8 if n > 8 and where % 2 == 0 else 0
        pos = start + (where * max(1, n - start)) // 2**32
        pos = min(pos, n - 1)
        if kind == "flip":
            buf[pos] ^= 1 << (k % 8) if k < 128 else (k | 1)
        elif kind == "field":
            width = (1, 2, 4, 8)[k % 4]
            value = INTERESTING[(k // 4) % len(INTERESTING)] % (1 << (8 * width))
            if pos + width <= n:
                buf[pos : pos + width] = value.to_bytes(width, "little")
        elif kind == "delete":
            del buf[pos : pos + 1 + k]
        elif kind == "duplicate":
            buf[pos:pos] = buf[pos : pos + 1 + k]
        elif kind == "insert":
            buf[pos:pos] = payload
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "splice" and donor:
            a = (where * len(donor)) // 2**32
            buf[pos : pos + 1 + k] = donor[a : a + 1 + k * 4]
    return bytes(buf)


@st.composite
def fuzzed_streams(draw: st.DrawFn, corpus: Sequence[bytes]) -> bytes:
    """A corpus stream, mutated, with its CRCs repaired nine times in ten."""
    data = draw(st.sampled_from(list(corpus)))
    donor = draw(st.sampled_from(list(corpus)))
    out = apply_mutations(data, draw(mutations()), donor)
    return repair_crcs(out) if draw(st.integers(0, 9)) else out


def check_stream(data: bytes, *, time_limit: float = TIME_LIMIT) -> str:
    """Decode ``data`` every way a user can; returns ``"decoded"`` or the CodecError's name.

    Raises
    ------
    Finding
        Something other than a CodecError escaped, a result disagreed with the header, or a
        call took longer than ``time_limit`` seconds.
    """
    from ..codec import decode, read_header

    outcome = "decoded"
    for name, call in (("read_header", read_header), ("decode", decode),
                       ("decode(frames=[0])", lambda d: decode(d, frames=[0]))):  # fmt: skip
        t0 = time.perf_counter()
        try:
            result = call(data)
        except CodecError as exc:
            outcome = type(exc).__name__
            result = None
        except BaseException as exc:
            raise Finding(f"{name}: {type(exc).__name__} escaped: {exc}", data) from exc
        elapsed = time.perf_counter() - t0
        if elapsed > time_limit:
            raise Finding(f"{name} took {elapsed:.1f} s (limit {time_limit} s)", data)
        if name == "decode" and isinstance(result, np.ndarray):
            header = read_header(data)
            expected = (header.rows, header.cols) if header.frames == 1 and result.ndim == 2 else header.shape
            if result.shape != tuple(expected):
                raise Finding(f"decode returned shape {result.shape}, header says {header.shape}", data)
    return outcome


def _limit_address_space(gigabytes: float) -> None:
    if gigabytes > 0:
        import resource

        limit = int(gigabytes * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m medcodec.testing.fuzz --help``."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.database import DirectoryBasedExampleDatabase

    p = argparse.ArgumentParser(prog="python -m medcodec.testing.fuzz", description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=10_000, help="mutated streams to try [10000]")
    p.add_argument("--corpus", type=Path, action="append", default=[],
                   help="folder of extra seed streams (*.mdc, *.jpg, *.bin); repeatable")  # fmt: skip
    p.add_argument("--database", type=Path, default=Path(".hypothesis/fuzz"),
                   help="hypothesis example database [.hypothesis/fuzz]; 'none' for none")  # fmt: skip
    p.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"), help="where findings go [fuzz-crashes/]")
    p.add_argument("--seed", type=int, default=None, help="hypothesis seed (reproducible runs)")
    p.add_argument("--address-space-gb", type=float, default=3.0, help="RLIMIT_AS for this process [3]; 0: none")
    args = p.parse_args(argv)
    _limit_address_space(args.address_space_gb)
    corpus = default_corpus(args.corpus)
    outcomes: dict[str, int] = {}
    database = None if str(args.database) == "none" else DirectoryBasedExampleDatabase(str(args.database))

    @settings(max_examples=args.examples, database=database, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.reuse, Phase.generate, Phase.shrink])  # fmt: skip
    @given(fuzzed_streams(corpus))
    def run(data: bytes) -> None:
        outcome = check_stream(data)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    if args.seed is not None:
        from hypothesis import seed

        run = seed(args.seed)(run)
    t0 = time.perf_counter()
    try:
        run()
    except Finding as exc:
        args.crashes.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(exc.data).hexdigest()
        (args.crashes / f"{digest}.bin").write_bytes(exc.data)
        (args.crashes / f"{digest}.txt").write_text("".join(traceback.format_exception(exc)))
        print(f"FINDING: {exc} -> {args.crashes / digest}.bin", file=sys.stderr)
        return 1
    total = sum(outcomes.values())
    summary = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items(), key=lambda kv: -kv[1]))
    print(f"{total} mutated streams in {time.perf_counter() - t0:.1f} s, no finding ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
