"""HTTP and DIMSE front of a medcodec store: DICOMweb, ZIP archives, C-STORE, and a fetch client.

``create_app(settings)`` (:mod:`.app`) builds the Starlette application ``medcodec serve`` runs
on uvicorn; errors become HTTP responses in one place, :mod:`.errors`. Layers only import
downward: this package uses :mod:`medcodec.delivery` (store, presets, live archives), never the
other way round.
"""

from __future__ import annotations

from starlette.applications import Starlette

from .settings import Settings

__all__ = ["Settings", "create_app"]


def create_app(settings: Settings) -> Starlette:
    """The Starlette application for ``settings`` (see :func:`medcodec.service.app.create_app`)."""
    from .app import create_app as _create

    return _create(settings)
