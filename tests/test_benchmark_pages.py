"""The benchmarks share docs/benchmarks.md: each run rewrites its own section and nothing else.

Until 2026-12-03 ``benchmarks/run.py --markdown`` rewrote the page from the top and kept only two
named sections: the delivery section and every note written by hand around the sections were lost
on each refresh.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _markdown() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_markdown", BENCH / "_markdown.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_section_is_replaced_and_everything_around_it_kept(tmp_path: Path) -> None:
    page = tmp_path / "b.md"
    page.write_text(
        "# Benchmarks\n\nintro\n<!-- a:begin -->\nold a\n<!-- a:end -->\nnote\n<!-- b:begin -->\nb\n<!-- b:end -->\ntail\n"
    )
    _markdown().put_section(page, "<!-- a:begin -->", "<!-- a:end -->", "new a\nsecond line\n")
    assert page.read_text() == (
        "# Benchmarks\n\nintro\n<!-- a:begin -->\nnew a\nsecond line\n<!-- a:end -->\nnote\n"
        "<!-- b:begin -->\nb\n<!-- b:end -->\ntail\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["b.md"]  # no temporary file left


def test_a_missing_section_is_appended_and_a_missing_page_made(tmp_path: Path) -> None:
    m = _markdown()
    page = tmp_path / "new.md"
    m.put_section(page, "<!-- a:begin -->", "<!-- a:end -->", "a")
    assert page.read_text() == "# Benchmarks\n\n<!-- a:begin -->\na\n<!-- a:end -->\n"
    m.put_section(page, "<!-- b:begin -->", "<!-- b:end -->", "b")
    assert page.read_text().endswith("<!-- a:end -->\n\n<!-- b:begin -->\nb\n<!-- b:end -->\n")


def test_every_writer_s_markers_are_in_the_page_once() -> None:
    """A marker renamed in a script, or lost from the page, would append a second copy."""
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    writers = ("run.py", "bench_speed.py", "bench_delivery.py")
    for name in writers:
        source = (BENCH / name).read_text()
        markers = re.findall(r'"(<!-- [\w-]+:(?:begin|start|end) -->)"', source)
        assert len(markers) == 2, (name, markers)
        begin, end = markers
        assert page.count(begin) == 1 and page.count(end) == 1, (name, begin)
        assert page.index(begin) < page.index(end)
        assert "put_section(" in source, name
