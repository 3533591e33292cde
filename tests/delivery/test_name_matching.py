"""Person-name matching in every script, on the default SQLite catalog (PostgreSQL: in
``test_postgres_catalog.py``, the same checks). An outside audit (2026-12-02) found Greek,
Cyrillic and German names with a capital letter not found even typed exactly as stored (SQLite's
``lower()`` folds ASCII only), and Japanese, Chinese and Korean names found only as the whole
``Alphabetic=Ideographic=Phonetic`` string."""

from __future__ import annotations

from delivery_data import check_name_matching, store  # noqa: F401 (fixture)


def test_person_names_match_in_every_script_and_by_component_group(store) -> None:
    check_name_matching(store)


def test_an_empty_value_among_several_is_null_in_dicom_json(store) -> None:
    """PS3.18 F.2.5: ``\\ISO 2022 IR 87`` (the first value empty, as every ISO 2022 Specific
    Character Set starts) is ``[null, "ISO 2022 IR 87"]`` in QIDO-RS and ``/metadata``; pydicom
    writes ``""`` (an outside audit, 2026-12-02)."""
    from pathlib import Path

    from pydicom.data import get_charset_files

    assert store.ingest([Path(get_charset_files("chrH31.dcm")[0])], precompress=False).ok
    (study,) = store.find_studies({"PatientName": "Yamada*"}, include=["00080005"])
    (record,) = store.instances(study["0020000D"]["Value"][0])
    for found in (study, store.find_instances(None, None, include=["00080005"])[0], store.metadata(record)):
        assert found["00080005"]["Value"] == [None, "ISO 2022 IR 87"], found["00080005"]
