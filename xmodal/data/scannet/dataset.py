"""``ScanNetDataset``: one sample per scene — the labelled mesh and its posed RGB-D frames.

Works on real ScanNet and on ``xmodal synth indoor`` worlds alike: it reads only the real
layout (see :mod:`xmodal.data.scannet.files`); our ``label_nyu40/`` images are returned when
present and are ``None`` otherwise. Frames are loaded lazily, one at a time, when indexed.

Frames and units: vertices and poses are in the ScanNet world frame of the scan (z up, metres;
``axis_alignment`` maps it to the axis-aligned room frame); cameras are OpenCV (x right, y down,
z forward); ``pose`` is camera -> world; depth is metres along the camera z axis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import numpy as np

from xmodal.data.labels import NYU40_TO_SCANNET20
from xmodal.data.scannet import files as F
from xmodal.data.scannet.prepare import build_info, load_info, load_mesh, prepare_command
from xmodal.errors import ConfigError, DataError, where
from xmodal.geometry import rgbd_visibility
from xmodal.registry import DATASETS


@dataclass
class ScanNetFrame:
    """One posed RGB-D frame (ScanNet depth is registered to the colour camera: same pose)."""

    frame_id: str
    image: np.ndarray  # [H, W, 3] uint8 RGB
    depth: np.ndarray  # [h, w] float32 metres (camera z), 0 = no measurement
    pose: np.ndarray  # [4, 4] float64 camera (OpenCV) -> world
    intrinsic_color: np.ndarray  # [3, 3] float64, pixels of ``image``
    intrinsic_depth: np.ndarray  # [3, 3] float64, pixels of ``depth``
    label: np.ndarray | None = None  # [H, W] int64 NYU40 ids (synthetic extra), None on real data

    def project(self, points: np.ndarray, abs_tol: float = 0.05, rel_tol: float = 0.02):
        """World points [N, 3] -> colour-image ``uv`` [N, 2], camera ``depth`` [N] and ``visible``
        [N] (inside the colour image and passing the depth-map test; see ``rgbd_visibility``)."""
        return rgbd_visibility(points, self.pose, self.intrinsic_depth, self.depth, self.intrinsic_color,
                               self.image.shape[:2], abs_tol, rel_tol)


class FrameSequence(Sequence[ScanNetFrame]):
    """Lazy list of a scene's frames; ``frames[i]`` reads the files of frame ``i``."""

    def __init__(self, root: Path, scene: dict[str, Any], info_path: str, stride: int = 1,
                 max_frames: int | None = None, with_labels: bool = True) -> None:
        self.root = root
        self.scene = scene["name"]
        self.dir = root / scene["frames_dir"]
        ids = scene["frame_ids"][:: max(1, stride)]
        self.frame_ids: list[str] = ids[:max_frames] if max_frames is not None else ids
        self.intrinsic_color = np.asarray(scene["intrinsic_color"], np.float64)  # [3, 3]
        self.intrinsic_depth = np.asarray(scene["intrinsic_depth"], np.float64)  # [3, 3]
        self.color_size = tuple(scene["color_size"])  # (H, W)
        self.depth_size = tuple(scene["depth_size"])  # (h, w)
        self.with_labels = with_labels and scene.get("has_label_images", False)
        self._info_path = info_path
        self._fix = prepare_command(root, info_path if Path(info_path).is_file() else "<info.json>")

    def __len__(self) -> int:
        return len(self.frame_ids)

    def _path(self, sub: str, fid: str, ext: str) -> Path:
        return self.dir / sub / (fid + ext)

    def _check(self, path: Path, what: str) -> None:
        if not path.is_file():
            raise DataError(f"{what} {where(path)} of {self.scene} is listed in {self._info_path} "
                            f"but missing; restore it, or re-index with `{self._fix}`.")

    def pose(self, i: int) -> np.ndarray:
        """[4, 4] float64 camera -> world of frame ``i``."""
        path = self._path(F.POSE_DIR, self.frame_ids[i], F.POSE_EXT)
        self._check(path, "pose")
        T = F.read_pose(path)
        if not F.pose_is_valid(T):
            raise DataError(f"pose {where(path)} is not a finite rigid transform although the info "
                            f"file lists it as valid; re-index with `{self._fix}`.")
        return T

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"frame {i} out of range ({len(self)} frames)")
        fid = self.frame_ids[i]
        paths = {
            "colour image": self._path(F.COLOR_DIR, fid, F.COLOR_EXT),
            "depth image": self._path(F.DEPTH_DIR, fid, F.DEPTH_EXT),
        }
        for what, p in paths.items():
            self._check(p, what)
        label = None
        if self.with_labels:
            lp = self._path(F.LABEL_DIR, fid, F.LABEL_EXT)
            label = F.read_label_image(lp) if lp.is_file() else None
        return ScanNetFrame(
            frame_id=fid,
            image=F.read_color(paths["colour image"]),
            depth=F.read_depth(paths["depth image"]),
            pose=self.pose(i),
            intrinsic_color=self.intrinsic_color.copy(),
            intrinsic_depth=self.intrinsic_depth.copy(),
            label=label,
        )

    def __iter__(self) -> Iterator[ScanNetFrame]:
        for i in range(len(self)):
            yield self[i]

    def poses(self) -> np.ndarray:
        """[M, 4, 4] float64 camera -> world of every frame (reads only the pose files)."""
        return np.stack([self.pose(i) for i in range(len(self))]) if len(self) else np.zeros((0, 4, 4))


@dataclass
class ScanNetScene:
    """One scene: labelled mesh vertices and lazily loaded posed frames."""

    name: str
    split: str
    vertices: np.ndarray  # [N, 3] float32, ScanNet world frame, metres
    colors: np.ndarray  # [N, 3] uint8 RGB
    labels: np.ndarray  # [N] int64 ScanNet-20 ids (0..19), 255 = ignore; all 255 without labels
    labels_nyu40: np.ndarray  # [N] int64 NYU40 ids (0 = unannotated)
    faces: np.ndarray  # [F, 3] int64 vertex indices
    axis_alignment: np.ndarray  # [4, 4] float64 world -> axis-aligned room frame
    frames: FrameSequence


class ScanNetDataset:
    """ScanNet scenes of one split, from an info file or directly from a root folder.

    A map-style dataset (``len`` / ``[i]``), usable by ``torch.utils.data.DataLoader`` with a
    collate function of the training pipeline; it does not import torch itself, so data tools
    (``xmodal synth indoor``, ``prepare``) stay light.

    Args:
        root_or_info: info file written by ``xmodal prepare scannet`` (schema checked), or a
            ScanNet root folder (indexed in memory at construction).
        split: ``"train"``, ``"val"``, ``"test"``, or ``"all"`` (every split of the info file).
        frame_stride: keep every ``frame_stride``-th valid frame (ScanNet records at 30 Hz;
            OpenScene-style pipelines use 20).
        max_frames: keep at most this many frames per scene (after the stride).
        with_label_images: return ``label_nyu40/`` images when the world has them.
        root: override the root recorded in the info file (data moved).
    """

    def __init__(
        self,
        root_or_info: str | os.PathLike,
        split: str = "train",
        *,
        frame_stride: int = 1,
        max_frames: int | None = None,
        with_label_images: bool = True,
        root: str | os.PathLike | None = None,
    ) -> None:
        src = Path(root_or_info)
        if src.is_dir():
            info = build_info(src, ("train", "val") if split == "all" else split, progress=False, check_mesh=False)
            self.info_path = f"(in-memory index of {src})"
        else:
            info = load_info(src)
            self.info_path = str(src)
            if split != "all" and split not in info["splits"]:
                raise DataError(f"info file {where(src)} covers splits {info['splits']}, not "
                                f"{split!r}; re-create it with `{prepare_command(info['root'], src, [*info['splits'], split])}`.")
        self.root = Path(root) if root is not None else Path(info["root"])
        if not self.root.is_dir():
            raise DataError(f"ScanNet root {where(self.root)} recorded in {self.info_path} does not "
                            "exist; pass root=... or re-run `xmodal prepare scannet`.")
        self._fix = prepare_command(self.root, src if src.is_file() else "<info.json>")
        self.split = split
        self.scenes: list[dict[str, Any]] = [s for s in info["scenes"] if split in ("all", s["split"])]
        self.frame_stride = frame_stride
        self.max_frames = max_frames
        self.with_label_images = with_label_images

    def __len__(self) -> int:
        return len(self.scenes)

    @property
    def scene_names(self) -> list[str]:
        return [s["name"] for s in self.scenes]

    def __getitem__(self, index: int) -> ScanNetScene:
        s = self.scenes[index]
        mesh = self.root / s["mesh"]
        labels_path = self.root / s["labels"] if s.get("labels") else None
        if labels_path is not None and not labels_path.is_file():
            raise DataError(f"labels {where(labels_path)} listed in {self.info_path} are missing; "
                            f"restore them or re-index with `{self._fix}`.")
        xyz, rgb, faces, nyu40 = load_mesh(mesh, labels_path)
        if s.get("num_vertices") is not None and len(xyz) != s["num_vertices"]:
            raise DataError(f"mesh {where(mesh)} has {len(xyz)} vertices but {self.info_path} "
                            f"recorded {s['num_vertices']}; re-index with `{self._fix}`.")
        if nyu40 is None:
            nyu40 = np.zeros(len(xyz), np.int64)
        return ScanNetScene(
            name=s["name"],
            split=s["split"],
            vertices=xyz,
            colors=rgb,
            labels=NYU40_TO_SCANNET20[nyu40].astype(np.int64),
            labels_nyu40=nyu40,
            faces=faces,
            axis_alignment=np.asarray(s["axis_alignment"], np.float64),
            frames=FrameSequence(self.root, s, self.info_path, self.frame_stride, self.max_frames,
                                 self.with_label_images),
        )


@dataclass
class ScanNetDatasetConfig:
    """Options of :class:`ScanNetDataset` (config section ``dataset: {type: scannet}``)."""

    info_file: str | None = None  # written by `xmodal prepare scannet`; or give only `root`
    root: str | None = None  # ScanNet root; overrides the one recorded in the info file
    split: Literal["train", "val", "test", "all"] = "train"
    frame_stride: int = 1
    max_frames: int | None = None
    with_label_images: bool = True

    def validate(self) -> None:
        if self.info_file is None and self.root is None:
            raise ConfigError("dataset: set 'info_file' (from `xmodal prepare scannet`) or 'root'.")
        if self.frame_stride < 1:
            raise ConfigError(f"dataset.frame_stride must be >= 1, got {self.frame_stride}")


@DATASETS.register("scannet", config=ScanNetDatasetConfig)
def build_scannet_dataset(cfg: ScanNetDatasetConfig) -> ScanNetDataset:
    """Build a :class:`ScanNetDataset` from its config section."""
    cfg.validate()
    return ScanNetDataset(
        cfg.info_file or cfg.root,
        split=cfg.split,
        frame_stride=cfg.frame_stride,
        max_frames=cfg.max_frames,
        with_label_images=cfg.with_label_images,
        root=cfg.root if cfg.info_file else None,
    )
