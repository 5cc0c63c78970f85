"""The one error every weights reader and importer raises."""

from __future__ import annotations

__all__ = ["WeightsError"]


class WeightsError(ValueError):
    """A weights file that cannot be read or imported; the one-line message names the file and,
    for a mismatch with the architecture, the key."""
