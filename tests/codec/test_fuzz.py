"""A short, bounded run of the mutation fuzzer (medcodec.testing.fuzz); run it longer with
``python -m medcodec.testing.fuzz --examples 200000``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import medcodec
from medcodec.testing import fuzz

FUZZ_DATA = Path(__file__).resolve().parent.parent / "data" / "fuzz"
CORPUS = fuzz.default_corpus([FUZZ_DATA])


def test_corpus_decodes_or_is_a_known_reproducer() -> None:
    outcomes = [fuzz.check_stream(data) for data in CORPUS]
    assert outcomes.count("decoded") >= 7  # 6 fresh streams + the base of tests/data/fuzz
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


def test_fuzzer_command_line_under_3gb_address_space(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "medcodec.testing.fuzz", "--examples", "200", "--seed", "3", "--database", "none",
         "--corpus", str(FUZZ_DATA), "--crashes", str(tmp_path / "crashes"), "--address-space-gb", "3"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "no finding" in proc.stdout and not (tmp_path / "crashes").exists()
