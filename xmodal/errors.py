"""Exceptions that carry an actionable message.

Every error raised on bad user input says *what* was wrong, *where* (file, key, argument) and
*what to do*. The CLI prints these without a traceback and exits with status 2.
"""

from __future__ import annotations

import os


class XmodalError(Exception):
    """Base class for errors caused by user input (data, config, arguments)."""


class ConfigError(XmodalError):
    """A config file, key or value is invalid."""


class DataError(XmodalError):
    """A dataset file or folder is missing, truncated or malformed."""


class SchemaError(DataError):
    """An info / cache file was written with another schema version."""


def where(path: str | os.PathLike, detail: str = "") -> str:
    """Format a location for messages: ``'<path>'`` or ``'<path>' (<detail>)``."""
    return f"'{os.fspath(path)}'" + (f" ({detail})" if detail else "")
