"""Reading image files with errors that name the file and say how to get it back."""

from __future__ import annotations

import os
from pathlib import Path

from xmodal.errors import DataError, where


def open_image(path: str | os.PathLike, what: str, fix: str):
    """Open and decode an image (PIL, loaded); a missing or undecodable file raises a DataError
    ``"<what> '<path>' is missing; <fix>."``."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {where(path)} is missing; {fix}.")
    try:
        img = Image.open(path)
        img.load()
    except (OSError, SyntaxError) as exc:
        raise DataError(f"{what} {where(path)} cannot be decoded ({exc}); {fix}.") from None
    return img
