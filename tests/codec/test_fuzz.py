"""A short, bounded run of the mutation fuzzer (medcodec.testing.fuzz); run it longer with
``python -m medcodec.testing.fuzz --examples 200000``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import medcodec
from medcodec.codec import mdc2
from medcodec.testing import fuzz

FUZZ_DATA = Path(__file__).resolve().parent.parent / "data" / "fuzz"
CORPUS = fuzz.default_corpus([FUZZ_DATA])


def test_corpus_decodes_or_is_a_known_reproducer() -> None:
    outcomes = [fuzz.check_stream(data) for data in CORPUS]
    # 19 fresh streams (3 of them .mdc 2.0, 2 of them 2.1, 2 of them 2.2, 1 of them 2.3, 5 of them 2.4) + the
    # base and the three v2 bases of tests/data/fuzz
    assert outcomes.count("decoded") >= 23
    assert {_mdc_version(d) for d in CORPUS} == {
        None, (1, 0), (2, 0), (2, 1), (2, 2), (2, 3), (2, 4), (2, 5), (2, 6), (2, 7), (2, 8), (2, 9), (2, 10),
        (2, 11), (2, 12)
    }  # fmt: skip
    assert len(PRED_COMPACT_CORPUS) >= 4
    assert len(TX_CORPUS) >= 4  # 3 fresh, the committed 2.5 base (and its truncation)
    assert len(BIG_CORPUS) >= 3  # 3 fresh 2.6 streams (the default from big26 to 2026-12-04)
    assert len(WITHIN_CORPUS) >= 3  # 3 fresh 2.11 streams (the default from 2026-12-04 to 2.12)
    assert len(TRAINED_CORPUS) >= 3  # 3 fresh 2.12 streams (the default since)
    assert len(COMPACT_CORPUS) >= 4 and len(MODES2_CORPUS) > len(COMPACT_CORPUS)
    assert len(V2_CORPUS) >= 10  # 5 fresh, 3 committed bases, 2 truncated v2 reproducers
    assert set(outcomes) <= {"decoded", "CorruptStreamError", "TruncatedStreamError"}


def test_repaired_crcs_let_damage_reach_the_coded_data() -> None:
    data = CORPUS[0]
    _header, index = medcodec.codec.container.parse_container(data)
    off, size = index[1]
    damaged = bytearray(data)
    damaged[off + size - 40] ^= 0x5A  # inside frame 1's coded bytes
    with pytest.raises(medcodec.ChecksumMismatchError):
        medcodec.decode(bytes(damaged))
    repaired = fuzz.repair_crcs(bytes(damaged))
    assert repaired != bytes(damaged)
    medcodec.decode(repaired, frames=0)  # frame 0 untouched, its CRC fine
    try:  # frame 1 now fails (if at all) on its content, not on the checksum
        medcodec.decode(repaired, frames=1)
    except medcodec.CodecError as exc:
        assert not isinstance(exc, medcodec.ChecksumMismatchError)


@settings(max_examples=250, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.fuzzed_streams(CORPUS))
def test_mutated_streams_raise_only_codec_errors(data: bytes) -> None:
    fuzz.check_stream(data)




def _mdc_version(data: bytes) -> tuple[int, int] | None:
    """The version of a readable .mdc header (None: JPEG, or a reproducer refused on purpose)."""
    try:
        return medcodec.read_header(data).version if data.startswith(fuzz.SIGNATURE) else None
    except medcodec.CodecError:
        return None


#: Range-coded streams of the first v2 tools: predictive (2.0; 2.7 with run mode; 2.8 with modular
#: levels; 2.9 with packed frames) and DCT levels (2.0, 2.1, 2.3).
V2_CORPUS = [d for d in CORPUS if _mdc_version(d) in ((2, 0), (2, 1), (2, 3), (2, 7), (2, 8), (2, 9), (2, 10))]
#: Format 2.10: predictive streams in the compact layout (§20).
PRED_COMPACT_CORPUS = [d for d in CORPUS if _mdc_version(d) == (2, 10)]
#: DCT streams whose levels use the multi-symbol range coder (entropy coder 2, format 2.1; 2.3 with padding masks).
MULTI_CORPUS = [d for d in CORPUS if _mdc_version(d) in ((2, 1), (2, 3))]
#: Intra-predicted DCT streams (format 2.2).
INTRA_CORPUS = [d for d in CORPUS if _mdc_version(d) == (2, 2)]
#: Format 2.4 streams: the compact layout (short HEAD, delta QTAB, FIDX of frame ends, varint FRAM
#: fields) and intra frames with mode model 2 (in both layouts; one with padding masks).
MODES2_CORPUS = [d for d in CORPUS if _mdc_version(d) == (2, 4)]
#: The compact ones among them.
COMPACT_CORPUS = [d for d in MODES2_CORPUS if medcodec.read_header(d).compact]
#: Format 2.5 streams: intra frames with the per-block transform choice (FRAM flag 128).
TX_CORPUS = [d for d in CORPUS if _mdc_version(d) == (2, 5)]
#: Format 2.6 streams: intra frames with 16x16 blocks (FRAM flag 256 compact, 64 long).
BIG_CORPUS = [d for d in CORPUS if _mdc_version(d) == (2, 6)]
#: Format 2.11 streams: 2.6's intra frames, their levels under within-block contexts (§21).
WITHIN_CORPUS = [d for d in CORPUS if _mdc_version(d) == (2, 11)]
#: Format 2.12 streams: every context of 2.11's intra frames from the trained starts (§22).
TRAINED_CORPUS = [d for d in CORPUS if _mdc_version(d) == (2, 12)]


def test_v2_corpus_covers_both_codings() -> None:
    headers = [medcodec.read_header(d) for d in V2_CORPUS]
    transforms = {(h.transform, h.max_error is not None) for h in headers}
    assert transforms == {(0, False), (1, True)}  # range-coded DCT, predictive with a bound
    assert {h.max_error for h in headers} >= {0, 2, 3}
    assert {h.entropy for h in headers if h.transform == 0} == {1, 2}  # binary and multi-symbol coders
    assert len(MULTI_CORPUS) >= 3 and any(_mdc_version(d) == (2, 3) for d in MULTI_CORPUS)
    for version in ((2, 7), (2, 8)):  # format 2.7's run mode, 2.8's tools reach the mutated-stream tests below
        runs = [d for d in V2_CORPUS if _mdc_version(d) == version and _has_run_mode_frame(d)]
        assert len(runs) >= 2, version
    assert sum(_has_packed_frame(d) for d in V2_CORPUS if _mdc_version(d) == (2, 9)) >= 2  # 2.9's tables too
    assert any(_has_packed_frame(d) for d in PRED_COMPACT_CORPUS)  # and in the compact layout
    assert any(_has_run_mode_frame(d) for d in PRED_COMPACT_CORPUS)


def _has_packed_frame(data: bytes) -> bool:
    header, index = medcodec.codec.container.parse_container(data)
    return any(mdc2.parse_predictive_frame(data, header, entry)[1].values is not None for entry in index)


def _has_run_mode_frame(data: bytes) -> bool:
    header, index = medcodec.codec.container.parse_container(data)
    return any(mdc2.parse_predictive_frame(data, header, entry)[1].runs for entry in index)


@settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.fuzzed_streams(MULTI_CORPUS))
def test_mutated_multi_symbol_streams_raise_only_codec_errors(data: bytes) -> None:
    """Format 2.1 streams (CRCs repaired): damage reaches the multi-symbol range decoder."""
    fuzz.check_stream(data)


@settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.fuzzed_streams(V2_CORPUS))
def test_mutated_v2_streams_raise_only_codec_errors(data: bytes) -> None:
    """The .mdc 2.0 segments (HEAD coding fields, predictive and range-coded FRAMs) under the
    same mutations, CRCs repaired: damage reaches the model parameters and the range decoder."""
    fuzz.check_stream(data)


def test_fuzzer_command_line_under_3gb_address_space(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "medcodec.testing.fuzz", "--examples", "200", "--seed", "3", "--database", "none",
         "--corpus", str(FUZZ_DATA), "--crashes", str(tmp_path / "crashes"), "--address-space-gb", "3"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "no finding" in proc.stdout and not (tmp_path / "crashes").exists()


@settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.fuzzed_streams(INTRA_CORPUS))
def test_mutated_intra_streams_raise_only_codec_errors(data: bytes) -> None:
    """Format 2.2 streams (CRCs repaired): damage reaches the intra modes, the level decoder and the
    prediction loop."""
    assert len(INTRA_CORPUS) >= 2
    fuzz.check_stream(data)


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.fuzzed_streams(COMPACT_CORPUS))
def test_mutated_compact_streams_raise_only_codec_errors(data: bytes) -> None:
    """Format 2.4 streams (CRCs repaired nine times in ten): damage reaches the varints of the compact
    HEAD, QTAB, FIDX and FRAM fields, which must fail as codec errors, never IndexError / struct.error."""
    fuzz.check_stream(data)


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.fuzzed_streams(PRED_COMPACT_CORPUS))
def test_mutated_compact_predictive_streams_raise_only_codec_errors(data: bytes) -> None:
    """Format 2.10 streams (CRCs repaired nine times in ten): damage reaches the compact predictive
    FRAM's varints (flags, VMIN, span, thresholds), the value table and the range decoder behind them."""
    fuzz.check_stream(data)


@settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.fuzzed_streams(MODES2_CORPUS))
def test_mutated_mode_model_2_streams_raise_only_codec_errors(data: bytes) -> None:
    """Format 2.4 streams (CRCs repaired): damage reaches the mode decoder that runs inside the
    prediction loop (which blocks code a mode depends on the decoded samples)."""
    assert len(MODES2_CORPUS) >= 2
    fuzz.check_stream(data)


@settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.fuzzed_streams(TX_CORPUS))
def test_mutated_transform_choice_streams_raise_only_codec_errors(data: bytes) -> None:
    """Format 2.5 streams (CRCs repaired): damage reaches the transform choices read inside the
    prediction loop after each mode (which blocks code one depends on the decoded levels)."""
    fuzz.check_stream(data)


@settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.fuzzed_streams(BIG_CORPUS))
def test_mutated_16x16_block_streams_raise_only_codec_errors(data: bytes) -> None:
    """Format 2.6 streams (CRCs repaired): damage reaches the split symbols and the 16x16 blocks'
    pseudo-block levels read inside the macroblock loop."""
    fuzz.check_stream(data)


@settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.fuzzed_streams(WITHIN_CORPUS))
def test_mutated_within_context_streams_raise_only_codec_errors(data: bytes) -> None:
    """Format 2.11 streams (CRCs repaired): damage reaches the level decoder whose contexts read the
    block's own levels decoded so far (any value a corrupt stream gives them)."""
    fuzz.check_stream(data)


@settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.fuzzed_streams(TRAINED_CORPUS))
def test_mutated_trained_start_streams_raise_only_codec_errors(data: bytes) -> None:
    """Format 2.12 streams (CRCs repaired): the level decoder starting from the trained table reads
    damaged levels as any other (every trained symbol keeps a frequency of at least FLOOR)."""
    fuzz.check_stream(data)
