"""Range checks of user-facing arguments with messages that name the argument."""

from __future__ import annotations

import numbers

from xmodal.errors import XmodalError


def check_int(name: str, value, lo: int, hi: int) -> int:
    """``value`` as an int in ``[lo, hi]``; else an XmodalError naming ``name`` (e.g. ``--scenes``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise XmodalError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}.")
    return int(value)


def check_number(name: str, value, lo: float, hi: float, hint: str = "") -> float:
    """``value`` as a float in ``[lo, hi]``; else an XmodalError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not lo <= value <= hi:
        raise XmodalError(f"{name} must be a number in [{lo}, {hi}]{hint}, got {value!r}.")
    return float(value)
