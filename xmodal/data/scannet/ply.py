"""PLY meshes as ScanNet stores them: read and write with numpy, no extra dependency.

ScanNet's ``sceneXXXX_XX_vh_clean_2.ply`` is binary little-endian with vertex properties
``float x, y, z; uchar red, green, blue, alpha`` and faces ``list uchar int vertex_indices``;
``..._vh_clean_2.labels.ply`` adds ``ushort label`` (NYU40 id) to the vertices. The reader
accepts any binary (little- or big-endian) or ASCII PLY with scalar vertex properties and a
triangle face list; it checks the file size against the header, so a truncated download fails
with a :class:`~xmodal.errors.DataError` instead of returning garbage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xmodal.errors import DataError, where

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_NP_TO_PLY = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int",
              "u4": "uint", "f4": "float", "f8": "double"}  # fmt: skip


@dataclass
class PlyElement:
    name: str
    count: int
    scalars: list[tuple[str, str]]  # (property name, numpy type code without byte order)
    lists: list[tuple[str, str, str]]  # (property name, count type, item type)


@dataclass
class PlyMesh:
    """A triangle mesh with per-vertex properties.

    Attributes:
        vertex: structured array [N] with every vertex property (``x``, ``y``, ``z``, ``red``, ...).
        faces: [F, 3] int64 vertex indices (empty [0, 3] when the file has no faces).
    """

    vertex: np.ndarray
    faces: np.ndarray

    @property
    def xyz(self) -> np.ndarray:
        """[N, 3] float32 vertex positions in the file's frame (ScanNet: world frame, metres)."""
        return np.stack([self.vertex["x"], self.vertex["y"], self.vertex["z"]], 1).astype(np.float32)

    @property
    def rgb(self) -> np.ndarray:
        """[N, 3] uint8 vertex colours (white where the file has none)."""
        names = self.vertex.dtype.names or ()
        if not all(c in names for c in ("red", "green", "blue")):
            return np.full((len(self.vertex), 3), 255, dtype=np.uint8)
        return np.stack([self.vertex["red"], self.vertex["green"], self.vertex["blue"]], 1).astype(np.uint8)


def _parse_header(f, path: Path) -> tuple[str, list[PlyElement], int]:
    first = f.readline()
    if first.strip() != b"ply":
        raise DataError(f"{where(path)} is not a PLY file (first line {first[:40]!r}); "
                        "re-download or regenerate it.")
    fmt = None
    elements: list[PlyElement] = []
    while True:
        line = f.readline()
        if not line:
            raise DataError(f"{where(path)}: PLY header has no 'end_header' (truncated file?); "
                            "re-download or regenerate it.")
        words = line.decode("ascii", errors="replace").split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "end_header":
            break
        try:
            if words[0] == "format":
                fmt = words[1]
            elif words[0] == "element":
                elements.append(PlyElement(words[1], int(words[2]), [], []))
            elif words[0] == "property":
                el = elements[-1]
                if words[1] == "list":
                    el.lists.append((words[4], _PLY_TYPES[words[2]], _PLY_TYPES[words[3]]))
                else:
                    if el.lists:
                        raise DataError(f"{where(path)}: scalar property after a list in element "
                                        f"'{el.name}' is not supported; convert the file.")
                    el.scalars.append((words[2], _PLY_TYPES[words[1]]))
        except (IndexError, KeyError, ValueError) as e:
            raise DataError(f"{where(path)}: bad PLY header line {line.strip()!r} ({e}); "
                            "re-download or regenerate it.") from None
    if fmt not in ("binary_little_endian", "binary_big_endian", "ascii"):
        raise DataError(f"{where(path)}: unsupported PLY format {fmt!r}.")
    return fmt, elements, f.tell()


def _truncated(path: Path, what: str) -> DataError:
    return DataError(f"{where(path)} is truncated or corrupt ({what}); re-download or regenerate "
                     "it (for a synthetic world: `xmodal synth indoor --out ... --force`).")


def _read_binary(f, path: Path, fmt: str, elements: list[PlyElement]) -> dict[str, np.ndarray]:
    bo = "<" if fmt == "binary_little_endian" else ">"
    out: dict[str, np.ndarray] = {}
    data = f.read()
    pos = 0
    for el in elements:
        if not el.lists:
            dt = np.dtype([(n, bo + t) for n, t in el.scalars])
            need = dt.itemsize * el.count
            if pos + need > len(data):
                raise _truncated(path, f"element '{el.name}' needs {need} bytes at offset {pos}, "
                                       f"file has {len(data) - pos}")
            out[el.name] = np.frombuffer(data, dt, el.count, pos).copy()
            pos += need
            continue
        if el.scalars or len(el.lists) != 1:
            raise DataError(f"{where(path)}: element '{el.name}' mixes lists and scalars; "
                            "only a single face index list is supported.")
        _, ct, it = el.lists[0]
        # Fast path: every face is a triangle.
        dt = np.dtype([("n", bo + ct), ("idx", bo + it, (3,))])
        need = dt.itemsize * el.count
        if el.count == 0:
            out[el.name] = np.zeros((0, 3), np.int64)
            continue
        avail = min(el.count, (len(data) - pos) // dt.itemsize)
        arr = np.frombuffer(data, dt, avail, pos)
        if np.all(arr["n"] == 3):
            if avail < el.count:
                raise _truncated(path, f"{el.count} triangles need {need} bytes at offset {pos}, "
                                       f"file has {len(data) - pos}")
            out[el.name] = arr["idx"].astype(np.int64)
            pos += need
            continue
        # Slow path: general polygons, triangulated as fans.
        csize, isize = np.dtype(ct).itemsize, np.dtype(it).itemsize
        tris = []
        for _ in range(el.count):
            if pos + csize > len(data):
                raise _truncated(path, f"element '{el.name}' ends early")
            n = int(np.frombuffer(data, bo + ct, 1, pos)[0])
            pos += csize
            if pos + n * isize > len(data):
                raise _truncated(path, f"element '{el.name}' ends early")
            idx = np.frombuffer(data, bo + it, n, pos).astype(np.int64)
            pos += n * isize
            tris.extend((idx[0], idx[k], idx[k + 1]) for k in range(1, n - 1))
        out[el.name] = np.asarray(tris, np.int64).reshape(-1, 3)
    return out


def _read_ascii(f, path: Path, elements: list[PlyElement]) -> dict[str, np.ndarray]:
    lines = f.read().decode("ascii", errors="replace").splitlines()
    out: dict[str, np.ndarray] = {}
    pos = 0
    for el in elements:
        rows = lines[pos : pos + el.count]
        if len(rows) < el.count:
            raise _truncated(path, f"element '{el.name}' has {len(rows)} of {el.count} rows")
        pos += el.count
        if not el.lists:
            dt = np.dtype([(n, t) for n, t in el.scalars])
            arr = np.zeros(el.count, dt)
            vals = np.array([r.split() for r in rows], dtype=np.float64).reshape(el.count, -1)
            for k, (n, _) in enumerate(el.scalars):
                arr[n] = vals[:, k]
            out[el.name] = arr
        else:
            tris = []
            for r in rows:
                v = [int(x) for x in r.split()]
                tris.extend((v[1], v[k], v[k + 1]) for k in range(2, v[0]))
            out[el.name] = np.asarray(tris, np.int64).reshape(-1, 3)
    return out


def read_ply(path: str | os.PathLike) -> PlyMesh:
    """Read a PLY triangle mesh (ScanNet ``*_vh_clean_2.ply`` / ``*.labels.ply``).

    Raises:
        DataError: missing file, bad header, truncated data, face indices out of range.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"PLY file {where(path)} does not exist; check --root, or regenerate the "
                        "world / re-run the ScanNet download for this scene.")
    with open(path, "rb") as f:
        fmt, elements, _ = _parse_header(f, path)
        try:
            data = _read_ascii(f, path, elements) if fmt == "ascii" else _read_binary(f, path, fmt, elements)
        except ValueError as e:
            raise _truncated(path, str(e)) from None
    if "vertex" not in data:
        raise DataError(f"{where(path)} has no 'vertex' element; it is not a mesh.")
    vertex = data["vertex"]
    for c in ("x", "y", "z"):
        if c not in (vertex.dtype.names or ()):
            raise DataError(f"{where(path)}: vertex property '{c}' is missing.")
    faces = data.get("face", np.zeros((0, 3), np.int64))
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertex)):
        raise DataError(f"{where(path)}: face indices reach {faces.max()} but there are "
                        f"{len(vertex)} vertices (corrupt file); re-download or regenerate it.")
    return PlyMesh(vertex=vertex, faces=faces)


def write_ply(
    path: str | os.PathLike,
    vertex: np.ndarray,  # structured array [N] (e.g. x, y, z float32; red, green, blue, alpha uint8)
    faces: np.ndarray,  # [F, 3] int vertex indices
    comment: str = "xmodal generated",
) -> None:
    """Write a binary little-endian PLY with ``list uchar int vertex_indices`` faces (ScanNet's
    layout). The caller makes the write atomic (the file is written in one ``write``)."""
    names = vertex.dtype.names
    header = ["ply", "format binary_little_endian 1.0", f"comment {comment}",
              f"element vertex {len(vertex)}"]
    le = []
    for n in names:
        t = vertex.dtype[n]
        header.append(f"property {_NP_TO_PLY[t.str[1:]]} {n}")
        le.append((n, "<" + t.str[1:]))
    header += [f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    fdt = np.dtype([("n", "u1"), ("idx", "<i4", (3,))])
    farr = np.empty(len(faces), fdt)
    farr["n"] = 3
    farr["idx"] = faces
    blob = ("\n".join(header) + "\n").encode("ascii") + vertex.astype(le).tobytes() + farr.tobytes()
    with open(path, "wb") as f:
        f.write(blob)


def mesh_vertex_array(
    xyz: np.ndarray,  # [N, 3] metres
    rgb: np.ndarray,  # [N, 3] uint8
    label: np.ndarray | None = None,  # [N] NYU40 ids (written as ushort ``label``)
) -> np.ndarray:
    """Structured vertex array with ScanNet's property names and types (alpha = 255)."""
    fields = [("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"),
              ("blue", "u1"), ("alpha", "u1")]
    if label is not None:
        fields.append(("label", "u2"))
    v = np.empty(len(xyz), np.dtype(fields))
    v["x"], v["y"], v["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    v["red"], v["green"], v["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    v["alpha"] = 255
    if label is not None:
        v["label"] = label
    return v
