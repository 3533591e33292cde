"""Rate control: :mod:`medcodec.ratecontrol`, re-exported here (the one search moved below
:mod:`medcodec.dicom` and :mod:`medcodec.evaluate`, which both use it)."""

from __future__ import annotations

from ..ratecontrol import Knob, KnobSearch, SearchResult, calibration_indices, find_knob_for_rate

__all__ = ["Knob", "KnobSearch", "SearchResult", "find_knob_for_rate", "calibration_indices"]
