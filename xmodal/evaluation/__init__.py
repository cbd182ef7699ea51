"""Metrics and evaluation protocols."""

from xmodal.evaluation.lidarseg_submission import (
    LidarsegSubmissionWriter,
    SubmissionMeta,
    check_lidarseg_submission,
    expected_point_counts,
    export_lidarseg_submission,
    score_with_devkit,
    validate_lidarseg_submission,
)
from xmodal.evaluation.segmentation import SegmentationMetric
from xmodal.evaluation.splits import Split, load_split, shipped_split

__all__ = [
    "LidarsegSubmissionWriter",
    "SegmentationMetric",
    "Split",
    "SubmissionMeta",
    "check_lidarseg_submission",
    "expected_point_counts",
    "export_lidarseg_submission",
    "load_split",
    "score_with_devkit",
    "shipped_split",
    "validate_lidarseg_submission",
]
