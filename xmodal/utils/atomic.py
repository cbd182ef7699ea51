"""Atomic file and folder writes: a reader never sees half a file, a crash never leaves one.

- :func:`atomic_write` writes to a temporary file in the same folder, fsyncs it and renames it
  over the target.
- :func:`staged_dir` builds a whole output folder under a temporary sibling and renames it into
  place only when everything inside succeeded; on error the partial folder is removed, and
  partial folders left by killed processes are removed by the next run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator

from xmodal.errors import DataError, XmodalError


def writable_parent(path: str | os.PathLike, what: str = "--out") -> Path:
    """Create the parent folder of ``path`` if needed and check it is writable (before any
    long work), raising a DataError that names ``what`` otherwise."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the folder of {what} '{path}': {exc.strerror}; choose a writable path.") from exc
    if not os.access(path.parent, os.W_OK):
        raise DataError(f"cannot write {what} '{path}': its folder is not writable; choose a writable path.")
    return path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file for writing; rename it to ``path`` on success, delete it on error."""
    path = writable_parent(path, "output file")
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


def check_output_dir(out: str | os.PathLike, force: bool, marker: str | None = None) -> Path:
    """Refuse a non-empty output folder unless ``force``; with ``force``, refuse anyway when the
    folder holds the current directory, or (given ``marker``) was not written by us."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise XmodalError(f"--out '{out}' exists and is not a folder; choose another path.")
    if not (out.is_dir() and any(out.iterdir())):
        return out
    if not force:
        raise XmodalError(f"--out '{out}' is not empty; pass --force to replace it, or choose an empty folder.")
    cwd, target = Path.cwd().resolve(), out.resolve()
    if target == cwd or target in cwd.parents or target == Path.home().resolve():
        raise XmodalError(
            f"--out '{out}' holds the current directory or is the home folder; --force would delete "
            "it. Choose a dedicated output folder."
        )
    if marker is not None and not (out / marker).is_file():
        raise XmodalError(
            f"--out '{out}' is not empty and was not written by this command (no '{marker}' in it); "
            "--force only replaces earlier outputs. Empty it yourself or choose another folder."
        )
    return out


def _remove_stale_partials(out: Path) -> None:
    """Remove ``.<name>.partial-<pid>-*`` siblings whose process no longer runs."""
    for p in out.parent.glob(f".{out.name}.partial-*"):
        try:
            pid = int(p.name.split(".partial-")[1].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


@contextlib.contextmanager
def staged_dir(out: str | os.PathLike, force: bool = False, marker: str | None = None) -> Iterator[Path]:
    """Yield a temporary folder next to ``out``; on success it replaces ``out`` atomically.

    On any error the temporary folder is removed and ``out`` is left as it was. ``marker`` names
    a file every output of the caller holds: ``force`` replaces only folders that have it.
    """
    out = check_output_dir(out, force, marker).absolute()
    writable_parent(out)
    _remove_stale_partials(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-{os.getpid()}-", dir=out.parent))
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
