"""The one exception the data loaders raise for anything wrong with a dataset on disk."""

from __future__ import annotations

__all__ = ["DataFormatError"]


class DataFormatError(ValueError):
    """A dataset is missing, incomplete, corrupt or in a format convscope does not read.

    The message is one line that names the problem and the file, directory or value
    involved, and where it helps, what to do; the command line prints it as
    ``convscope: error: <message>``.
    """
