"""argparse value types shared by the commands (``type=positive(int)``, ...)."""

from __future__ import annotations

import argparse


def positive(kind):
    """A parser of ``kind`` (int or float) values that must be > 0."""

    def parse(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def non_negative(kind):
    """A parser of ``kind`` (int or float) values that must be >= 0."""

    def parse(text: str):
        value = kind(text)
        if not value >= 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value

    return parse
