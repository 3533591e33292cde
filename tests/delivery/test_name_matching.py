"""Person-name matching in every script, on the default SQLite catalog (PostgreSQL: in
``test_postgres_catalog.py``, the same checks). An outside audit (2026-12-02) found Greek,
Cyrillic and German names with a capital letter not found even typed exactly as stored (SQLite's
``lower()`` folds ASCII only), and Japanese, Chinese and Korean names found only as the whole
``Alphabetic=Ideographic=Phonetic`` string."""

from __future__ import annotations

from delivery_data import check_name_matching, store  # noqa: F401 (fixture)


def test_person_names_match_in_every_script_and_by_component_group(store) -> None:
    check_name_matching(store)
