"""Atomic file and folder writes: a reader never sees half a file, a crash never leaves one.

- :func:`atomic_write` writes to a temporary file in the same folder, fsyncs it and renames it
  over the target.
- :func:`staged_dir` builds a whole output folder under a temporary sibling and renames it into
  place only when everything inside succeeded; on error the partial folder is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator

from xmodal.errors import XmodalError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file for writing; rename it to ``path`` on success, delete it on error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_output_dir(out: str | os.PathLike, force: bool) -> Path:
    """Refuse a non-empty output folder unless ``force`` (then it will be replaced)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise XmodalError(f"--out '{out}' exists and is not a folder; choose another path.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise XmodalError(
            f"--out '{out}' is not empty; pass --force to replace it, or choose an empty folder."
        )
    return out


@contextlib.contextmanager
def staged_dir(out: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``out``; on success it replaces ``out`` atomically.

    On any error the temporary folder is removed and ``out`` is left as it was.
    """
    out = check_output_dir(out, force).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
