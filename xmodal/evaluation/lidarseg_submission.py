"""nuScenes-lidarseg submission folders: export, validation, and scoring with the devkit.

Layout (``nuscenes/eval/lidarseg/README.md`` and ``validate_submission.py``, devkit 1.2.0)::

    <results>/lidarseg/<eval_set>/<lidar_sample_data_token>_lidarseg.bin   # uint8, one per point
    <results>/<eval_set>/submission.json   # {"meta": {"use_camera", "use_lidar", "use_radar",
                                           #           "use_map", "use_external"}} all booleans

A ``.bin`` holds one class id in 1..16 per point of the keyframe's ``LIDAR_TOP`` ``.pcd.bin``, in
the order the points are stored there (the devkit pairs prediction ``i`` with label ``i`` of the
lidarseg file, which is in that order; it reorders nothing). 0 (ignore) is not allowed.

:class:`LidarsegSubmissionWriter` builds ``lidarseg/<eval_set>`` in a staged folder that replaces
the old one only when every file is written (and, given the expected point counts, complete);
``submission.json`` is written atomically last. :func:`validate_lidarseg_submission` lists what
is wrong with a folder; :func:`score_with_devkit` runs the devkit's ``LidarSegEval``.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence
from unittest import mock

import numpy as np

from xmodal.data.labels import NUSCENES_EVAL_CLASSES
from xmodal.errors import DataError
from xmodal.utils.atomic import atomic_write, staged_dir

#: Class ids 0..16 (0 = ignore, never a valid prediction).
NUM_IDS = len(NUSCENES_EVAL_CLASSES)
POINT_BYTES = 5 * 4  # .pcd.bin: 5 float32 per point


@dataclass(frozen=True)
class SubmissionMeta:
    """The ``meta`` flags of ``submission.json`` (which inputs the method used)."""

    use_camera: bool = False
    use_lidar: bool = True
    use_radar: bool = False
    use_map: bool = False
    use_external: bool = False

    def to_json(self) -> dict:
        return {"meta": {k: bool(v) for k, v in asdict(self).items()}}


def prediction_path(results_folder: str | os.PathLike, eval_set: str, lidar_token: str) -> Path:
    """``<results>/lidarseg/<eval_set>/<lidar_token>_lidarseg.bin``."""
    return Path(results_folder) / "lidarseg" / eval_set / f"{lidar_token}_lidarseg.bin"


def submission_json_path(results_folder: str | os.PathLike, eval_set: str) -> Path:
    """``<results>/<eval_set>/submission.json``."""
    return Path(results_folder) / eval_set / "submission.json"


def _as_ids(pred: object, token: str) -> np.ndarray:
    """[N] uint8 class ids from a numpy array or torch tensor; raises naming ``token``."""
    if hasattr(pred, "detach"):
        pred = pred.detach().cpu().numpy()
    pred = np.asarray(pred)
    if pred.ndim != 1:
        raise ValueError(f"prediction for lidar token {token}: shape {pred.shape}, expected [N] (one id per point).")
    if not np.issubdtype(pred.dtype, np.integer):
        raise ValueError(f"prediction for lidar token {token}: dtype {pred.dtype}; pass class ids (argmax), not scores.")
    if pred.size and (pred.min() < 1 or pred.max() >= NUM_IDS):
        raise ValueError(
            f"prediction for lidar token {token}: ids in [{pred.min()}, {pred.max()}], the submission "
            f"needs 1..{NUM_IDS - 1} (0 = ignore is refused). A head over 16 classes that outputs "
            "0..15 needs +1."
        )
    return pred.astype(np.uint8)


class LidarsegSubmissionWriter:
    """Write a submission one point cloud at a time; nothing appears until :meth:`close`.

    Use as a context manager (an exception discards everything)::

        with LidarsegSubmissionWriter(out, "val", expected=counts) as w:
            for token, pred in predictions:   # pred: [N] ids 1..16 in .pcd.bin point order
                w.add(token, pred)

    Args:
        results_folder: ``<results>``; other eval sets in it are left alone.
        eval_set: devkit split name (``val``, ``test``, ``mini_val``, ...).
        meta: the ``submission.json`` flags.
        expected: lidar token -> point count (:func:`expected_point_counts`); when given, unknown
            tokens and wrong lengths fail at :meth:`add` and missing ones at :meth:`close`.
        force: replace an existing ``lidarseg/<eval_set>`` folder.
    """

    def __init__(
        self,
        results_folder: str | os.PathLike,
        eval_set: str,
        meta: SubmissionMeta | None = None,
        expected: Mapping[str, int] | None = None,
        force: bool = False,
    ) -> None:
        self.results_folder, self.eval_set = Path(results_folder), eval_set
        self.meta = meta or SubmissionMeta()
        self.expected = None if expected is None else dict(expected)
        self.written: dict[str, int] = {}
        self._stack = contextlib.ExitStack()
        self._tmp: Path = self._stack.enter_context(
            staged_dir(self.results_folder / "lidarseg" / eval_set, force=force)
        )

    def add(self, lidar_token: str, pred: object) -> None:
        """Write the prediction [N] (ids 1..16, ``.pcd.bin`` point order) of one keyframe."""
        if lidar_token in self.written:
            raise ValueError(f"lidar token {lidar_token} was added twice.")
        ids = _as_ids(pred, lidar_token)
        if self.expected is not None:
            if lidar_token not in self.expected:
                raise ValueError(f"lidar token {lidar_token} is not in eval set '{self.eval_set}' (not in expected).")
            if len(ids) != self.expected[lidar_token]:
                raise ValueError(
                    f"prediction for lidar token {lidar_token} has {len(ids)} values but the point "
                    f"cloud has {self.expected[lidar_token]} points; predict every point of the "
                    ".pcd.bin (map voxel predictions back with the inverse indices)."
                )
        ids.tofile(self._tmp / f"{lidar_token}_lidarseg.bin")
        self.written[lidar_token] = len(ids)

    def close(self) -> Path:
        """Check completeness, move the folder into place, write ``submission.json``."""
        if self.expected is not None:
            missing = sorted(set(self.expected) - set(self.written))
            if missing:
                self.abort()
                raise DataError(
                    f"submission for '{self.eval_set}' in '{self.results_folder}' is incomplete: "
                    f"{len(missing)} of {len(self.expected)} point clouds have no prediction (e.g. "
                    f"{', '.join(missing[:3])}); nothing was written."
                )
        self._stack.close()
        with atomic_write(submission_json_path(self.results_folder, self.eval_set), "w") as f:
            json.dump(self.meta.to_json(), f, indent=2)
        return self.results_folder

    def abort(self) -> None:
        """Discard what was written (the previous folder, if any, stays)."""
        self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> "LidarsegSubmissionWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def export_lidarseg_submission(
    results_folder: str | os.PathLike,
    eval_set: str,
    predictions: Mapping[str, object] | Iterable[tuple[str, object]],
    meta: SubmissionMeta | None = None,
    expected: Mapping[str, int] | None = None,
    force: bool = False,
) -> Path:
    """Write a whole submission from ``{lidar_token: pred [N]}`` (or (token, pred) pairs)."""
    items = predictions.items() if isinstance(predictions, Mapping) else predictions
    with LidarsegSubmissionWriter(results_folder, eval_set, meta, expected, force) as w:
        for token, pred in items:
            w.add(token, pred)
    return Path(results_folder)


def expected_point_counts(data_list: Sequence[dict], dataroot: str | os.PathLike) -> dict[str, int]:
    """Lidar sample_data token -> number of points of its ``.pcd.bin`` (file size / 20 bytes),
    for info entries (``load_infos(path)["data_list"]``)."""
    out = {}
    for e in data_list:
        path = Path(dataroot) / e["lidar"]["path"]
        if not path.is_file():
            raise DataError(f"LiDAR file '{path}' of sample {e['token']} is missing; check the dataroot.")
        size = path.stat().st_size
        if size % POINT_BYTES:
            raise DataError(f"LiDAR file '{path}' is truncated ({size} bytes is not a multiple of {POINT_BYTES}).")
        out[e["lidar"]["token"]] = size // POINT_BYTES
    return out


def validate_lidarseg_submission(
    results_folder: str | os.PathLike, eval_set: str, expected: Mapping[str, int], max_listed: int = 10
) -> list[str]:
    """Everything wrong with a submission folder, one message per problem (empty: valid).

    Checks the devkit's rules: ``submission.json`` with exactly the five boolean meta flags; one
    ``.bin`` per lidar token of ``expected`` (token -> point count) whose length is that count;
    ids in 1..16. Extra ``.bin`` files (another split's tokens) are reported too.
    """
    root = Path(results_folder)
    problems: list[str] = []
    meta_path = submission_json_path(root, eval_set)
    if not meta_path.is_file():
        problems.append(f"'{meta_path}' is missing (write it with the meta flags: {list(SubmissionMeta().to_json()['meta'])}).")
    else:
        try:
            meta = json.loads(meta_path.read_text())["meta"]
            want = set(SubmissionMeta().to_json()["meta"])
            if set(meta) != want:
                problems.append(f"'{meta_path}': meta keys {sorted(meta)}, expected exactly {sorted(want)}.")
            wrong = [k for k in want & set(meta) if type(meta[k]) is not bool]
            if wrong:
                problems.append(f"'{meta_path}': meta values of {sorted(wrong)} must be true/false.")
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"'{meta_path}' is not {{\"meta\": {{...}}}} JSON ({type(exc).__name__}: {exc}).")
    bins = root / "lidarseg" / eval_set
    if not bins.is_dir():
        return problems + [f"'{bins}' is missing: no predictions for eval set '{eval_set}'."]
    present = {p.name[: -len("_lidarseg.bin")] for p in bins.glob("*_lidarseg.bin")}
    missing = sorted(set(expected) - present)
    extra = sorted(present - set(expected))
    if missing:
        problems.append(f"{len(missing)} of {len(expected)} point clouds have no prediction file in '{bins}', e.g. {', '.join(missing[:3])}.")
    if extra:
        problems.append(f"{len(extra)} prediction files in '{bins}' are not in eval set '{eval_set}', e.g. {', '.join(extra[:3])}.")
    per_file = []
    for token in sorted(set(expected) & present):
        pred = np.fromfile(prediction_path(root, eval_set, token), dtype=np.uint8)
        if len(pred) != expected[token]:
            per_file.append(f"'{token}_lidarseg.bin' has {len(pred)} predictions for {expected[token]} points.")
        elif pred.size and (pred.min() < 1 or pred.max() >= NUM_IDS):
            n = int(((pred < 1) | (pred >= NUM_IDS)).sum())
            per_file.append(f"'{token}_lidarseg.bin' has {n} ids outside 1..{NUM_IDS - 1} (range [{pred.min()}, {pred.max()}]).")
    problems += per_file[:max_listed]
    if len(per_file) > max_listed:
        problems.append(f"... and {len(per_file) - max_listed} more files with wrong lengths or ids.")
    return problems


def check_lidarseg_submission(results_folder: str | os.PathLike, eval_set: str, expected: Mapping[str, int]) -> None:
    """Raise a DataError listing every problem of :func:`validate_lidarseg_submission`."""
    problems = validate_lidarseg_submission(results_folder, eval_set, expected)
    if problems:
        raise DataError(f"lidarseg submission '{results_folder}' ({eval_set}) is invalid:\n- " + "\n- ".join(problems))


@contextlib.contextmanager
def _present_scenes_only(present: set[str]) -> Iterator[None]:
    """Make the devkit's lidarseg eval see only the scenes of its splits that the data holds."""
    import nuscenes.eval.lidarseg.utils as lu

    real = lu.create_splits_scenes

    def restricted(verbose: bool = False) -> dict:
        return {k: [s for s in v if s in present] for k, v in real(verbose=verbose).items()}

    with mock.patch.object(lu, "create_splits_scenes", restricted):
        yield


def score_with_devkit(
    dataroot: str | os.PathLike,
    version: str,
    eval_set: str,
    results_folder: str | os.PathLike,
    only_present_scenes: bool = False,
    verbose: bool = False,
) -> dict:
    """Score a submission with the devkit's ``LidarSegEval`` (its own code and arithmetic).

    The devkit evaluates every scene of ``eval_set`` and fails on one the dataroot lacks.
    ``only_present_scenes=True`` restricts the split to the scenes present (for partial and
    synthetic worlds; the result is then *not* the official number and says so).

    Returns ``{"miou", "freq_weighted_iou", "iou_per_class": {class: IoU (NaN if absent)},
    "eval_set", "version", "scenes", "num_samples", "partial_split"}``.
    """
    from nuscenes.eval.lidarseg.evaluate import LidarSegEval
    from nuscenes.eval.lidarseg.utils import get_samples_in_eval_set
    from nuscenes.nuscenes import NuScenes
    from nuscenes.utils.splits import create_splits_scenes

    splits = create_splits_scenes(verbose=False)
    if eval_set not in splits:
        raise DataError(f"eval_set '{eval_set}' is not a devkit split; known: {', '.join(splits)}.")
    try:
        nusc = NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    except Exception as exc:  # the devkit raises bare AssertionErrors
        raise DataError(f"the devkit could not open '{Path(dataroot) / version}': {exc!r}.") from exc
    present = {s["name"] for s in nusc.scene}
    wanted = list(splits[eval_set])
    missing = [s for s in wanted if s not in present]
    if len(missing) == len(wanted):
        raise DataError(f"'{Path(dataroot) / version}' holds none of the {len(wanted)} scenes of '{eval_set}' (it has {', '.join(sorted(present))}).")
    if missing and not only_present_scenes:
        raise DataError(
            f"'{Path(dataroot) / version}' lacks {len(missing)} of the {len(wanted)} scenes of "
            f"'{eval_set}' ({', '.join(missing[:5])}); the devkit evaluates whole splits. Pass "
            "only_present_scenes=True to score the scenes present (not an official number)."
        )
    ctx = _present_scenes_only(present) if missing else contextlib.nullcontext()
    with ctx:
        try:
            evaluator = LidarSegEval(nusc, str(results_folder), eval_set=eval_set, verbose=verbose)
            res = evaluator.evaluate()
        except (AssertionError, FileNotFoundError) as exc:
            raise DataError(
                f"the devkit's LidarSegEval refused '{results_folder}' ({eval_set}): {exc}. Run "
                "validate_lidarseg_submission on it to see what is wrong."
            ) from exc
        n = len(get_samples_in_eval_set(nusc, eval_set))
    return {
        "miou": float(res["miou"]),
        "freq_weighted_iou": float(res["freq_weighted_iou"]),
        "iou_per_class": {k: float(v) for k, v in res["iou_per_class"].items() if k != "ignore"},
        "eval_set": eval_set,
        "version": version,
        "scenes": [s for s in wanted if s in present],
        "num_samples": n,
        "partial_split": bool(missing),
    }
