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


def read_rgb(path: str | os.PathLike, what: str, fix: str):
    """[H, W, 3] uint8 RGB of any colour image (greyscale / palette / RGBA converted)."""
    import numpy as np

    return np.asarray(open_image(path, what, fix).convert("RGB"))


def read_index_image(path: str | os.PathLike, what: str, fix: str):
    """[H, W] integer ids of a single-channel label image (uint8 / uint16 PNG)."""
    import numpy as np

    img = open_image(path, what, fix)
    arr = np.asarray(img)
    if arr.ndim != 2:
        raise DataError(f"{what} {where(path)} must be a single-channel label image, got mode {img.mode}; {fix}.")
    return arr
