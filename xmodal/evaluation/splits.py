"""Named split files: which scenes or frames a protocol trains on, in a small text file.

Format (``data/splits/*.txt``; see ``data/splits/README.md``)::

    # xmodal split file
    # name: nuscenes_train_scenes_every100th_slidr-1pct
    # kind: scenes                 (scenes: one scene name per line; frames: one sample token)
    # rule: <how the items were chosen>
    # source: <what they were chosen from>
    # fraction: 0.01               (items / items of the source)
    # count: 7                     (optional; checked when present)
    scene-0171
    ...

Header lines are ``# key: value`` before the first item; other ``#`` lines and anything after a
``#`` on an item line are comments. ``kind``, ``rule``, ``source`` and ``fraction`` are required.

Frame lists hold nuScenes **sample tokens** (the keyframe's ``sample`` token, the ``token`` of an
info entry), one per line, optionally followed by ``# <scene_name> <timestamp>`` for humans.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from xmodal.errors import DataError
from xmodal.utils.atomic import atomic_write

KINDS = ("scenes", "frames")
REQUIRED_KEYS = ("kind", "rule", "source", "fraction")
FORMAT_LINE = "# xmodal split file"
#: The folder of the split files shipped with xmodal.
SPLITS_DIR = Path(__file__).resolve().parents[2] / "data" / "splits"


@dataclass(frozen=True)
class Split:
    """A split file: ``items`` are scene names (``kind='scenes'``) or sample tokens ('frames')."""

    name: str
    kind: str
    items: tuple[str, ...]
    fraction: float
    rule: str
    source: str
    path: Path | None = None
    header: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The info-entry key the items match: ``scene_name`` or ``token``."""
        return "scene_name" if self.kind == "scenes" else "token"

    def sha256(self) -> str | None:
        """SHA-256 of the file's bytes (None for a split that was not read from a file)."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest() if self.path else None

    def describe(self) -> dict:
        """What a metrics JSON records about the split."""
        return {
            "name": self.name,
            "kind": self.kind,
            "fraction": self.fraction,
            "count": len(self.items),
            "rule": self.rule,
            "file": None if self.path is None else str(self.path),
            "sha256": self.sha256(),
        }

    def filter(self, data_list: Sequence[dict], require_all: bool = False) -> list[dict]:
        """Info entries (``load_infos(path)["data_list"]``) named by the split, in data order.

        Scene splits match ``entry["scene_name"]``, frame splits ``entry["token"]``. Raises a
        DataError when nothing matches; when only some items are found, warns (or raises with
        ``require_all``) naming the missing ones.
        """
        wanted = set(self.items)
        kept = [e for e in data_list if e.get(self.key) in wanted]
        where = f"split '{self.path or self.name}'"
        if not kept:
            have = sorted({str(e.get("scene_name")) for e in data_list})
            shown = ", ".join(have[:8]) + (f", ... ({len(have)} scenes)" if len(have) > 8 else "")
            if self.kind == "frames":
                hint = (
                    " Frame lists name sample tokens of one dataset release; check that the info "
                    "file was prepared from the same nuScenes version."
                )
            elif have and set(have) <= _mini_scenes():
                hint = (
                    " The data is (a part of) v1.0-mini, and the v1.0-mini scenes are not in this "
                    "split: a fraction of the 700 trainval train scenes keeps none of them (SLidR "
                    "issue #19: v1.0-mini with dataset_skip_step 100 gives 0 samples). Use "
                    "nuscenes_mini_train_scenes.txt on v1.0-mini, or this split on v1.0-trainval."
                )
            else:
                hint = " The info file covers other scenes; prepare it for the split's version and split."
            raise DataError(
                f"{where} ({self.kind}, {len(self.items)} items, e.g. {', '.join(self.items[:3])}) "
                f"matches none of the {len(data_list)} info entries; the data holds the scenes: "
                f"{shown or 'none'}.{hint}"
            )
        found = {e.get(self.key) for e in kept}
        missing = [i for i in self.items if i not in found]
        if missing:
            msg = (
                f"{where}: {len(missing)} of its {len(self.items)} {self.kind} are not in the data "
                f"(e.g. {', '.join(missing[:5])}); {len(kept)} info entries kept. The info file "
                "covers a different split or version than the split file."
            )
            if require_all:
                raise DataError(msg)
            warnings.warn(msg, stacklevel=2)
        return kept


def _mini_scenes() -> set[str]:
    """Scene names of the devkit's v1.0-mini splits."""
    from nuscenes.utils.splits import mini_train, mini_val

    return set(mini_train) | set(mini_val)


def _bad(path: Path, what: str) -> DataError:
    return DataError(f"split file '{path}': {what}. See data/splits/README.md for the format.")


def load_split(path: str | os.PathLike) -> Split:
    """Read a split file (see module doc); a bad header or unknown kind raises a DataError that
    names the file and the line."""
    path = Path(path)
    if not path.is_file():
        shipped = sorted(p.name for p in SPLITS_DIR.glob("*.txt")) if SPLITS_DIR.is_dir() else []
        raise DataError(
            f"split file '{path}' does not exist. Shipped splits (in {SPLITS_DIR}): "
            f"{', '.join(shipped) or 'none'}; write others with tools/make_splits.py."
        )
    header: dict[str, str] = {}
    items: list[str] = []
    for no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            body = line[1:].strip()
            if not items and ":" in body and not body.startswith(FORMAT_LINE[2:]):
                key, value = body.split(":", 1)
                key = key.strip().lower()
                if key.isidentifier():
                    if key in header:
                        raise _bad(path, f"line {no}: header key '{key}' given twice")
                    header[key] = value.strip()
            continue
        item = line.split("#", 1)[0].strip()
        if " " in item or "\t" in item:
            raise _bad(path, f"line {no}: '{item}' is not one item (one scene name or token per line)")
        items.append(item)
    missing = [k for k in REQUIRED_KEYS if k not in header]
    if missing:
        raise _bad(path, f"the header lacks {', '.join(missing)} (needs '# key: value' lines for {', '.join(REQUIRED_KEYS)} before the first item)")
    kind = header["kind"]
    if kind not in KINDS:
        raise _bad(path, f"unknown kind '{kind}'; allowed: {', '.join(KINDS)}")
    try:
        fraction = float(header["fraction"])
    except ValueError:
        raise _bad(path, f"fraction '{header['fraction']}' is not a number (write e.g. 0.01 for 1 %)") from None
    if not 0.0 < fraction <= 1.0:
        raise _bad(path, f"fraction {fraction} must lie in (0, 1]")
    if not items:
        raise _bad(path, "it holds no items")
    dup = sorted({i for i in items if items.count(i) > 1}) if len(set(items)) != len(items) else []
    if dup:
        raise _bad(path, f"items listed twice: {', '.join(dup[:5])}")
    if "count" in header and header["count"] != str(len(items)):
        raise _bad(path, f"the header says count {header['count']} but the file lists {len(items)} items (truncated or edited?)")
    return Split(
        name=header.get("name", path.stem),
        kind=kind,
        items=tuple(items),
        fraction=fraction,
        rule=header["rule"],
        source=header["source"],
        path=path,
        header=header,
    )


def write_split(
    path: str | os.PathLike,
    kind: str,
    items: Sequence[str],
    rule: str,
    source: str,
    fraction: float,
    extra: dict[str, str] | None = None,
    comments: Sequence[str] | None = None,
) -> Path:
    """Write a split file atomically (name = file stem); ``extra`` adds header keys,
    ``comments`` one trailing comment per item (e.g. scene and timestamp of a frame)."""
    path = Path(path)
    if kind not in KINDS:
        raise ValueError(f"kind '{kind}' unknown; allowed: {', '.join(KINDS)}")
    if comments is not None and len(comments) != len(items):
        raise ValueError(f"{len(comments)} comments for {len(items)} items")
    head = {"name": path.stem, "kind": kind, "rule": rule, "source": source,
            "fraction": f"{fraction:.6g}", "count": str(len(items)), **(extra or {})}  # fmt: skip
    lines = [FORMAT_LINE + " (format: data/splits/README.md)"]
    lines += [f"# {k}: {v}" for k, v in head.items()]
    for i, item in enumerate(items):
        lines.append(item if comments is None else f"{item}  # {comments[i]}")
    with atomic_write(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------- rules
def ordinal(k: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, ..., 100th."""
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def slidr_skip_scenes(split_scenes: Iterable[str], skip: int, scene_table: Sequence[str] | None = None) -> list[str]:
    """SLidR's ``dataset_skip_step`` rule (``downstream/dataloader_nuscenes.py``).

    SLidR walks the scene table (``nusc.scene``, the order of ``scene.json``), counts the scenes
    that belong to the split (1, 2, 3, ...) and keeps a scene when its count is a multiple of
    ``skip``: the ``skip``-th, ``2*skip``-th, ... scene, i.e. 0-based positions ``skip-1``,
    ``2*skip-1``, ... (not position 0). ``scene_table`` is that table order (scene names); None
    uses the split's own order (the devkit's lists are sorted by name).
    """
    if int(skip) < 1:
        raise ValueError(f"skip must be >= 1, got {skip}")
    split_scenes = list(split_scenes)
    members = set(split_scenes)
    order = split_scenes if scene_table is None else [s for s in scene_table if s in members]
    return [s for count, s in enumerate(order, 1) if count % skip == 0]


def every_kth_keyframe(data_list: Sequence[dict], k: int, start: int = 0) -> list[dict]:
    """Every ``k``-th keyframe in ``(scene_name, timestamp)`` order, from position ``start``
    (0-based): entries ``start, start+k, ...`` of that order. Deterministic for a data list."""
    if int(k) < 1 or not 0 <= int(start) < max(int(k), 1):
        raise ValueError(f"need k >= 1 and 0 <= start < k, got k={k}, start={start}")
    for e in data_list:
        if not {"token", "scene_name", "timestamp"} <= set(e):
            raise DataError(f"info entry {e.get('token', '?')} lacks token/scene_name/timestamp; not a nuScenes info entry.")
    order = sorted(data_list, key=lambda e: (e["scene_name"], e["timestamp"], e["token"]))
    return order[start::k]


def write_frame_split(
    path: str | os.PathLike, data_list: Sequence[dict], k: int, source: str, start: int = 0
) -> Path:
    """Write the frame list of :func:`every_kth_keyframe` (sample tokens) to ``path``."""
    kept = every_kth_keyframe(data_list, k, start)
    if not kept:
        raise DataError(f"no keyframes to write to '{path}': the data list is empty.")
    return write_split(
        path,
        "frames",
        [e["token"] for e in kept],
        rule=f"every {ordinal(k)} keyframe (0-based positions {start}, {start + k}, ...) in (scene_name, timestamp) order",
        source=source,
        fraction=len(kept) / len(data_list),
        comments=[f"{e['scene_name']} {e['timestamp']}" for e in kept],
    )


def shipped_split(name: str) -> Split:
    """Load a split shipped in ``data/splits`` by file name (with or without ``.txt``)."""
    return load_split(SPLITS_DIR / (name if name.endswith(".txt") else name + ".txt"))
