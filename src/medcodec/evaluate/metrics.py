"""Image-quality, size and speed metrics: :mod:`medcodec.metrics`, re-exported here.

The metrics moved below :mod:`medcodec.dicom` and :mod:`medcodec.evaluate` (both measure with
them, and a lower layer must not import an upper one); this module keeps the old import path.
"""

from __future__ import annotations

from ..metrics import *  # noqa: F403
from ..metrics import __all__ as __all__
