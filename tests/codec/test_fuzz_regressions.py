"""Fuzz findings of issue 10 as named regression tests (reproducers: tests/data/README.md).

Each reproducer raised something outside ``CodecError`` (RecursionError, MemoryError), decoded
the wrong thing silently, or gave up frames it could deliver. The memory-bomb checks run in a
child process under a 3 GB address-space limit (``resource.setrlimit(RLIMIT_AS)``), so a
regression shows up as a MemoryError there rather than as a machine swapping here.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import medcodec
from medcodec.cli.main import main

DATA = Path(__file__).resolve().parent.parent / "data"
FUZZ = DATA / "fuzz"
ADDRESS_SPACE = 3 << 30


def _load_script():
    spec = importlib.util.spec_from_file_location("make_reproducers", DATA / "make_reproducers.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


R = _load_script()


@pytest.fixture(scope="module")
def base() -> bytes:
    return R.BASE.read_bytes()


def test_committed_reproducers_are_what_the_script_builds(base: bytes) -> None:
    for name, (build, committed) in R.REPRODUCERS.items():
        if committed:
            assert (FUZZ / name).read_bytes() == build(base), name
    head, qtab, frames = R._parts(base)
    assert R.rebuild(head, qtab, [], frames) == base  # the script's own writer is faithful


def test_meta_deep_nesting_is_a_corrupt_stream_not_a_recursion_error() -> None:
    data = (FUZZ / "meta_deep_nesting.mdc").read_bytes()
    for call in (medcodec.decode, medcodec.read_header, lambda d: medcodec.decode(d, frames=0)):
        with pytest.raises(medcodec.CorruptStreamError) as info:
            call(data)
        assert info.value.segment == "meta" and info.value.offset == 225 and "nested 20000" in str(info.value)


def test_meta_nesting_within_the_limit_still_decodes(base: bytes) -> None:
    head, qtab, frames = R._parts(base)
    ok = R.rebuild(head, qtab, [R.segment(b"meta", b'{"x": ' + b"[" * 30 + b"]" * 30 + b"}")], frames)
    np.testing.assert_array_equal(medcodec.decode(ok), medcodec.decode(base))
    # brackets inside a JSON string are not nesting
    ok = R.rebuild(head, qtab, [R.segment(b"meta", b'{"note": "' + b"[" * 100 + b'"}')], frames)
    assert medcodec.decode(ok).shape == (3, 256, 256)


def test_meta_ndim2_on_three_frames_is_refused_not_cut_to_frame_0() -> None:
    data = (FUZZ / "meta_ndim2_three_frames.mdc").read_bytes()
    with pytest.raises(medcodec.CorruptStreamError, match="ndim 2.*3 frames") as info:
        medcodec.decode(data)
    assert info.value.segment == "meta"


@pytest.mark.parametrize("payload", [b'{"ndim": 4}', b'{"ndim": true}', b'{"ndim": "2"}', b"[1, 2]", b"\xff\xfe"])
def test_meta_with_bad_values_is_corrupt(base: bytes, payload: bytes) -> None:
    head, qtab, frames = R._parts(base)
    with pytest.raises(medcodec.CorruptStreamError):
        medcodec.decode(R.rebuild(head, qtab, [R.segment(b"meta", payload)], frames))


def test_truncated_stream_gives_the_frames_before_the_cut(base: bytes) -> None:
    data = (FUZZ / "truncated_80pct.mdc").read_bytes()
    _, index = medcodec.codec.container.parse_container(base)
    np.testing.assert_array_equal(medcodec.decode(data, frames=[0, 1]), medcodec.decode(base, frames=[0, 1]))
    np.testing.assert_array_equal(medcodec.decode(data, frames=1), medcodec.decode(base, frames=1))
    for frames in (None, [0, 2], 2, -1):
        with pytest.raises(medcodec.TruncatedStreamError) as info:
            medcodec.decode(data, frames=frames)
        err = info.value
        # the error names frame 2's FRAM segment (not FIDX) and its real offset
        assert (err.segment, err.offset) == ("FRAM 2", index[2][0])
        assert (err.expected, err.available) == (index[2][1], len(data) - index[2][0])
        assert "frames 0-1 are intact" in str(err)


def test_every_cut_delivers_exactly_the_complete_frames(base: bytes) -> None:
    """A truncation sweep: whatever the cut, frame k decodes iff its FRAM segment is complete."""
    _, index = medcodec.codec.container.parse_container(base)
    full = medcodec.decode(base)
    fidx_end = index[0][0]
    for cut in range(fidx_end, len(base) + 1, 997):
        data = base[:cut]
        for k, (off, size) in enumerate(index):
            if off + size <= cut:
                np.testing.assert_array_equal(medcodec.decode(data, frames=k), full[k])
            else:
                with pytest.raises(medcodec.TruncatedStreamError) as info:
                    medcodec.decode(data, frames=k)
                assert info.value.offset == off


def test_fidx_entries_must_not_overlap_or_be_too_small(base: bytes) -> None:
    head, qtab, frames = R._parts(base)
    with pytest.raises(medcodec.CorruptStreamError, match="overlaps") as info:
        medcodec.decode(R.rebuild(head, qtab, [], frames, entries=[0, 1, 1]))
    assert info.value.segment == "FIDX"
    with pytest.raises(medcodec.CorruptStreamError, match="overlaps"):
        medcodec.decode(R.rebuild(head, qtab, [], frames, entries=[1, 0, 2]))  # out of order
    # an entry too small to hold 256x256 blocks at 2 bits each
    data = bytearray(base)
    segs = R.segments(base)
    fidx_off, fidx = next((o, p) for t, o, p in segs if t == "FIDX")
    off0, _ = struct.unpack_from("<QI", fidx, 4)
    new = fidx[:4] + struct.pack("<QI", off0, 100) + fidx[16:]
    data[fidx_off : fidx_off + 12 + len(fidx)] = R.segment(b"FIDX", new)
    with pytest.raises(medcodec.CorruptStreamError, match="shorter than"):
        medcodec.decode(bytes(data))


_CHILD = textwrap.dedent(
    """
    import json, resource, sys, importlib.util
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    import medcodec
    spec = importlib.util.spec_from_file_location("r", {script!r})
    R = importlib.util.module_from_spec(spec); spec.loader.exec_module(R)
    base = R.BASE.read_bytes()
    head, qtab, frames = R._parts(base)
    cases = {{
        "fidx_65535_frames_one_fram": R.fidx_65535_frames_one_fram(base),
        "meta_deep_nesting": (R.HERE / "meta_deep_nesting.mdc").read_bytes(),
    }}
    # the same claim with 65535 distinct, in-order entries of the minimum size, all past the end
    n, rows = 65535, 256
    hd = head[:12] + n.to_bytes(4, "little") + head[16:]
    prefix = R.SIGNATURE + R.segment(b"HEAD", hd) + R.segment(b"QTAB", qtab)
    start, size = len(prefix) + 12 + 4 + 12 * n, 12 + 8 + 64 + 4 + (32 * 32) // 4
    fidx = n.to_bytes(4, "little") + b"".join((start + i * size).to_bytes(8, "little") + size.to_bytes(4, "little") for i in range(n))
    cases["fidx_65535_frames_past_the_end"] = prefix + R.segment(b"FIDX", fidx)
    out = {{}}
    for name, data in cases.items():
        for frames in (None, [0]):
            try:
                medcodec.decode(data, frames=frames)
                out[f"{{name}} {{frames}}"] = "decoded"
            except medcodec.CodecError as exc:
                out[f"{{name}} {{frames}}"] = type(exc).__name__
            except BaseException as exc:
                out[f"{{name}} {{frames}}"] = "ESCAPED " + type(exc).__name__
    print(json.dumps(out))
    """
)


def _run_child(template: str) -> dict[str, str]:
    """Run a child script (``template``) under the address-space limit; its JSON verdicts."""
    code = template.format(limit=ADDRESS_SPACE, script=str(DATA / "make_reproducers.py"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got: dict[str, str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return got


def test_memory_bombs_raise_codec_error_under_3gb_address_space() -> None:
    got = _run_child(_CHILD)
    assert got == {
        "fidx_65535_frames_one_fram None": "CorruptStreamError",
        "fidx_65535_frames_one_fram [0]": "CorruptStreamError",
        "fidx_65535_frames_past_the_end None": "TruncatedStreamError",
        "fidx_65535_frames_past_the_end [0]": "TruncatedStreamError",
        "meta_deep_nesting None": "CorruptStreamError",
        "meta_deep_nesting [0]": "CorruptStreamError",
    }, got


def test_cli_reports_each_reproducer_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("meta_deep_nesting.mdc", "meta_ndim2_three_frames.mdc"):
        for cmd in (["info", str(FUZZ / name)], ["decode", str(FUZZ / name), "-o", str(tmp_path / "x.npy")]):
            assert main(cmd) == 2
            err = capsys.readouterr().err
            assert err.startswith("error: meta at byte offset 225") and err.count("\n") == 1, err
    assert not (tmp_path / "x.npy").exists()


def test_cli_decodes_the_intact_frames_of_a_truncated_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = FUZZ / "truncated_80pct.mdc"
    assert main(["decode", str(data), "-o", str(tmp_path / "a.npy"), "--frames", "0-1"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), medcodec.decode(R.BASE.read_bytes(), frames=[0, 1]))
    capsys.readouterr()
    assert main(["decode", str(data), "-o", str(tmp_path / "b.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: FRAM 2 at byte offset 16481: frame 2 is cut off") and err.count("\n") == 1
    assert not (tmp_path / "b.npy").exists()


def test_info_on_a_truncated_stream_lists_what_is_there(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(FUZZ / "truncated_80pct.mdc"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["missing_frames"] == [2]
    assert [s["type"] for s in info["segments"]] == ["HEAD", "QTAB", "FIDX", "FRAM", "FRAM"]
    assert main(["info", str(FUZZ / "truncated_80pct.mdc")]) == 0
    assert "frame 2 is missing or cut" in capsys.readouterr().out
    assert main(["info", str(FUZZ / "base.u2.b12.f3.mdc"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["missing_frames"] == [] and info["segments"][-1]["type"] == "MEND"


# ------------------------------------------------------------------ .mdc 2.0 (issue 12)


def test_committed_v2_reproducers_are_what_the_script_builds() -> None:
    for name, (base_name, build) in R.V2_REPRODUCERS.items():
        assert (FUZZ / name).read_bytes() == build((FUZZ / base_name).read_bytes()), name
    for name in R.V2_BASES:
        version = (2, 5) if name.startswith("base_v25") else (2, 0)  # the 2.5 seed of tx25
        assert medcodec.read_header((FUZZ / name).read_bytes()).version == version, name


@pytest.mark.parametrize("name", ["v2_pred_truncated_80pct.mdc", "v2_arith_truncated_80pct.mdc",
                                  "v25_truncated_80pct.mdc"])  # fmt: skip
def test_v2_truncated_stream_gives_the_frames_before_the_cut(name: str) -> None:
    base = (FUZZ / R.V2_REPRODUCERS[name][0]).read_bytes()
    data = (FUZZ / name).read_bytes()
    _, index = medcodec.codec.container.parse_container(base)
    np.testing.assert_array_equal(medcodec.decode(data, frames=[0, 1]), medcodec.decode(base, frames=[0, 1]))
    for frames in (None, 2, [1, 2]):
        with pytest.raises(medcodec.TruncatedStreamError) as info:
            medcodec.decode(data, frames=frames)
        assert (info.value.segment, info.value.offset) == ("FRAM 2", index[2][0])
        assert "frames 0-1 are intact" in str(info.value)


@pytest.mark.parametrize("name", sorted(R.V2_BASES))
def test_v2_every_cut_delivers_exactly_the_complete_frames(name: str) -> None:
    base = (FUZZ / name).read_bytes()
    _, index = medcodec.codec.container.parse_container(base)
    full = medcodec.decode(base)
    for cut in range(index[0][0], len(base) + 1, 331):
        data = base[:cut]
        for k, (off, size) in enumerate(index):
            if off + size <= cut:
                np.testing.assert_array_equal(medcodec.decode(data, frames=k), full[k])
            else:
                with pytest.raises(medcodec.TruncatedStreamError) as info:
                    medcodec.decode(data, frames=k)
                assert info.value.offset == off


def test_info_on_a_truncated_v2_dct_stream_bounds_the_intact_frames(capsys: pytest.CaptureFixture[str]) -> None:
    base = FUZZ / "base_v2_arith.u2.b12.f3.mdc"
    assert main(["info", str(FUZZ / "v2_arith_truncated_80pct.mdc"), "--json"]) == 0
    cut = json.loads(capsys.readouterr().out)
    assert main(["info", str(base), "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert cut["missing_frames"] == [2] and whole["missing_frames"] == []
    data = base.read_bytes()
    per_frame = medcodec.codec.mdc2.stream_error_bound(data)
    assert whole["max_abs_error_bound"] == [round(max(per_frame), 2)]
    assert cut["max_abs_error_bound"] == [round(max(per_frame[:2]), 2)]


_CHILD_V2 = textwrap.dedent(
    """
    import json, resource, struct, sys, importlib.util
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    import medcodec
    spec = importlib.util.spec_from_file_location("r", {script!r})
    R = importlib.util.module_from_spec(spec); spec.loader.exec_module(R)
    out = {{}}
    for name in R.V2_BASES:
        base = (R.HERE / name).read_bytes()
        segs = R.segments(base)
        head = next(p for t, _, p in segs if t == "HEAD")
        qtab = [R.segment(b"QTAB", p) for t, _, p in segs if t == "QTAB"]
        fram = next(p for t, _, p in segs if t == "FRAM")
        n, rows = 65535, 256  # 65535 frames of 256 x 256: 8 GiB of samples if allocated
        hd = head[:4] + struct.pack("<III", rows, rows, n) + head[16:]
        prefix = R.SIGNATURE + R.segment(b"HEAD", hd) + b"".join(qtab)
        start = len(prefix) + 12 + 4 + 12 * n
        # all entries at one FRAM (overlap), and distinct entries of the v2 minimum size past the end
        size = 12 + len(fram)
        one = n.to_bytes(4, "little") + b"".join(struct.pack("<QI", start, size) for _ in range(n))
        minimum = medcodec.codec.container.frame_min_size(rows, rows, hd[20], hd[21])
        past = n.to_bytes(4, "little") + b"".join(struct.pack("<QI", start + i * minimum, minimum) for i in range(n))
        cases = {{"one_fram": prefix + R.segment(b"FIDX", one) + R.segment(b"FRAM", fram),
                  "past_the_end": prefix + R.segment(b"FIDX", past)}}
        for case, data in cases.items():
            for frames in (None, [0]):
                try:
                    medcodec.decode(data, frames=frames)
                    out[f"{{name}} {{case}} {{frames}}"] = "decoded"
                except medcodec.CodecError as exc:
                    out[f"{{name}} {{case}} {{frames}}"] = type(exc).__name__
                except BaseException as exc:
                    out[f"{{name}} {{case}} {{frames}}"] = "ESCAPED " + type(exc).__name__
    print(json.dumps(out))
    """
)


def test_v2_memory_bombs_raise_codec_error_under_3gb_address_space() -> None:
    got = _run_child(_CHILD_V2)
    expected = {}
    for name in R.V2_BASES:
        for frames in (None, [0]):
            expected[f"{name} one_fram {frames}"] = "CorruptStreamError"
            expected[f"{name} past_the_end {frames}"] = "TruncatedStreamError"
    assert got == expected, got
