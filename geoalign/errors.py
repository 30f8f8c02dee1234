"""Errors a user can cause, each with a message that says what to do.

The CLI turns every :class:`GeoalignError` into one line on stderr and a non-zero exit code;
anything else is a bug and keeps its traceback.
"""


class GeoalignError(Exception):
    """Base class of user-facing errors (bad input, unreachable server, ...)."""


class InputFileError(GeoalignError):
    """An input file is missing, unreadable or corrupt."""


class CRSError(GeoalignError):
    """A dataset has no CRS, or CRSs cannot be reconciled."""


class EmptyInputError(GeoalignError):
    """An input holds nothing usable (no features, no overlap with the raster, ...)."""


class DownloadError(GeoalignError):
    """A server could not be reached or answered with an error after all retries."""


class CheckpointError(GeoalignError):
    """A model checkpoint is corrupt or from an incompatible version."""


class OptionError(GeoalignError):
    """An option or setting has a value geoalign cannot use (unknown method, a scale the model
    lacks, ...)."""


def first_line(err: Exception) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line
    errors that quote a library's complaint."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
