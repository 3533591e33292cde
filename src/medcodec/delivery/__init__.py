"""Delivery: a store of DICOM studies, presets pre-computed at ingest, archives (issue 9).

No HTTP here (that is :mod:`medcodec.service`). The contract between the two is
``docs/delivery.md``. In short::

    from medcodec.delivery import open_store, PRESETS

    store = open_store("store/")                       # local folder or fsspec URL
    report = store.ingest(["study/"])                  # files, folders, ZIPs, DICOMDIRs
    studies = store.find_studies({"PatientID": "X*"})  # DICOM JSON
    for record in store.instances(study_uid):
        with store.open_original(record) as fh: ...
    encoded = PRESETS["diagnostic"].encode_instance(data, mapping=store.series_mapping(uid, "diagnostic"))

Modules: :mod:`.uids` (UID grammar), :mod:`.catalog` (tables, QIDO matching),
:mod:`.store` (objects, atomic writes, checks), :mod:`.ingest` (duplicates, conflicts),
:mod:`.presets` (operating points, ``encode_instance``), :mod:`.manifest`,
:mod:`.precompute` (Dask).
"""

from __future__ import annotations

from ..errors import (
    ConflictError,
    DeliveryError,
    InvalidUidError,
    NotAcceptableError,
    NotDicomError,
    NotFoundError,
    PayloadTooLargeError,
    StoreFullError,
)
from .catalog import ArchiveRecord, InstanceRecord, RenditionRecord
from .ingest import IngestReport, InstanceOutcome
from .manifest import ManifestEntry
from .presets import DEFAULT_PRESETS, PRESETS, EncodedInstance, Preset
from .store import Store, StoreCheck, open_store
from .uids import is_valid_uid, validate_uid

__all__ = [
    "open_store",
    "Store",
    "StoreCheck",
    "InstanceRecord",
    "RenditionRecord",
    "ArchiveRecord",
    "IngestReport",
    "PRESETS",
    "DEFAULT_PRESETS",
    "Preset",
    "EncodedInstance",
    "ManifestEntry",
    "InstanceOutcome",
    "validate_uid",
    "is_valid_uid",
    "DeliveryError",
    "NotFoundError",
    "ConflictError",
    "InvalidUidError",
    "PayloadTooLargeError",
    "NotDicomError",
    "NotAcceptableError",
    "StoreFullError",
]
