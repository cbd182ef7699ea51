"""Losses, one module per family; each docstring carries its formula."""

from xmodal.losses.info_nce import info_nce, info_nce_reference

__all__ = ["info_nce", "info_nce_reference"]
