"""One quality, one step table on every slice of a series coded one image at a time.

An image coded without a series' ``range_bits`` once got the steps of its own content's span, so
one slice that spans 12 bits among neighbours spanning 11 got steps twice theirs at the same
quality (and an end slice of an MR series up to 4x finer ones): pooled over a 12-bit MR series
that cost 7 points of BD-rate for JPEG and 3 for ``.mdc`` (docs/design-notes.md, "One quality,
one step on every slice"). Data up to 12 bits now get the steps of their ``bits_stored``
(:func:`medcodec.codec.levelshift.default_range_bits`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pydicom
import pytest

import medcodec
from medcodec.codec import levelshift

HEAD = "ct_head_phantom_philips_ingenuity"


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", ["jpeg", "mdc"])
def test_slices_coded_one_at_a_time_get_one_step_table(shared_data: Path, fmt: str) -> None:
    files = sorted((shared_data / HEAD).glob("*.dcm"))
    slices = [pydicom.dcmread(f).pixel_array for f in files[25:28]]
    spans = [levelshift.content_range_bits(a, int(a.min()), int(a.max()), 12) for a in slices]
    assert spans == [11, 12, 11]  # slice 27 reaches 2057
    streams = [medcodec.encode(a, bits_stored=12, quality=60, format=fmt) for a in slices]
    tables = [np.asarray(medcodec.read_header(s).qtables[0]) for s in streams]
    for t in tables[1:]:
        np.testing.assert_array_equal(t, tables[0])
    # the span a series writer passes still sets them, the same on every slice
    series = [medcodec.encode(a, bits_stored=12, quality=60, format=fmt, range_bits=11) for a in slices]
    finer = [np.asarray(medcodec.read_header(s).qtables[0]) for s in series]
    for t in finer[1:]:
        np.testing.assert_array_equal(t, finer[0])
    assert finer[0][0] < tables[0][0]
    for a, s in zip(slices, streams):
        out = medcodec.decode(s).astype(np.int64)
        assert out.shape == a.shape and np.abs(out - a).mean() < 20


def test_deeper_data_keep_their_own_span_above_12_bits() -> None:
    """A 16-bit header over 13 bits of values keeps steps for those 13 bits, never finer than 12."""
    rng = np.random.default_rng(1)
    wide = rng.integers(0, 6000, (32, 32)).astype(np.uint16)  # 13 bits
    thin = rng.integers(0, 200, (32, 32)).astype(np.uint16)  # 8 bits
    assert levelshift.default_range_bits(wide, int(wide.min()), int(wide.max()), 16) == 13
    assert levelshift.default_range_bits(thin, int(thin.min()), int(thin.max()), 16) == 12
    assert levelshift.default_range_bits(thin, int(thin.min()), int(thin.max()), 10) == 10
    assert medcodec.read_header(medcodec.encode(wide, bits_stored=16, quality=60)).range_bits == 13
    assert medcodec.read_header(medcodec.encode(thin, bits_stored=16, quality=60)).range_bits == 12


@pytest.mark.realdata
def test_series_writers_keep_the_series_span(shared_data: Path, tmp_path: Path) -> None:
    """``medcodec encode`` to .mdc (``encode_to``) and ``evaluate`` code a series with the steps of its
    content's span, as before 2026-12-03 (the head phantom spans 11 bits: the CLI gave 23.1:1 at
    quality 75 and would give 38.9:1 with the steps of its 12-bit depth; an outside audit); only an
    image coded on its own by ``medcodec.encode`` takes its declared depth."""
    import io

    from medcodec.codec import mdc
    from medcodec.evaluate.peers import MedcodecAdapter, MedcodecJpegAdapter
    from medcodec.spec import PixelSpec

    files = sorted((shared_data / HEAD).glob("*.dcm"))
    stack = np.stack([pydicom.dcmread(f).pixel_array for f in files[60:63]])
    buf = io.BytesIO()
    mdc.encode_to(buf, list(stack), n_frames=3, bits_stored=12, signed=False, sample=list(stack), quality=75)
    written = medcodec.read_header(buf.getvalue())
    assert written.range_bits == 11
    spec = PixelSpec(bits_stored=12, signed=False)
    for adapter, fmt in ((MedcodecAdapter(), "mdc"), (MedcodecJpegAdapter(), "jpeg")):
        adapter.for_series(stack, spec)
        data = adapter.encode(stack[1], spec, target=75)
        steps = np.asarray(medcodec.read_header(data).qtables[0])
        same = medcodec.encode(stack[1], bits_stored=12, quality=75, format=fmt, range_bits=11,
                               **({"spec": spec} if fmt == "jpeg" else {}))  # fmt: skip
        np.testing.assert_array_equal(steps, np.asarray(medcodec.read_header(same).qtables[0]))
        if fmt == "mdc":
            np.testing.assert_array_equal(steps, np.asarray(written.qtables[0]))
        own = medcodec.read_header(medcodec.encode(stack[1], bits_stored=12, quality=75, format=fmt)).qtables[0]
        assert np.asarray(own)[0] > steps[0]  # an image on its own: the steps of its 12-bit depth


def test_evaluate_adapter_series_span_edges() -> None:
    """``MedcodecAdapter.for_series`` (a second outside audit): a big-endian stack is read as the
    same values; an adapter whose options set ``range_bits`` keeps its own; each call replaces the
    span of the last series; the JPEG adapter takes the frames' plain span."""
    from medcodec.evaluate.peers import MedcodecAdapter, MedcodecJpegAdapter
    from medcodec.spec import PixelSpec

    rng = np.random.default_rng(2)
    narrow = (1000 + rng.integers(0, 400, (3, 32, 40))).astype(np.uint16)  # 9 bits
    wide = rng.integers(0, 4096, (3, 32, 40)).astype(np.uint16)  # 12 bits
    spec = PixelSpec(bits_stored=12, signed=False)
    ad = MedcodecJpegAdapter()
    ad.for_series(narrow.astype(">u2"), spec)
    assert ad._range_bits == 9
    ad.for_series(wide, spec)
    assert ad._range_bits == 12

    class Pinned(MedcodecAdapter):
        options: ClassVar[dict[str, Any]] = {"range_bits": 10}

    pinned = Pinned()
    pinned.for_series(narrow, spec)
    data = pinned.encode(narrow[0], spec, target=60)
    assert medcodec.read_header(data).range_bits == 10
