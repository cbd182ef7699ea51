"""Teacher-feature cache: fp16 round trip, PCA, size report, resume, schema / teacher checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from xmodal.data.teacher_cache import TeacherCache, build_teacher_cache, fit_pca
from xmodal.errors import DataError, SchemaError, XmodalError
from xmodal.models.teachers.base import Teacher


class ConvTeacher(Teacher):
    """A fixed random stride-8 teacher; ``rank`` < D makes its features low-rank (PCA-exact)."""

    def __init__(self, seed: int = 0, dim: int = 16, rank: int | None = None):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        r = rank or dim
        self.conv = torch.nn.Conv2d(3, r, 8, stride=8)
        self.up = torch.nn.Conv2d(r, dim, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        self.feature_dim, self.name = dim, f"conv{seed}"
        self._identity = {"type": "test", "seed": seed, "rank": r}
        self.calls = 0
        self.freeze()

    def dense(self, images):
        self.calls += 1
        return self.up(self.conv(images))


@pytest.fixture()
def image_root(tmp_path):
    """Six images (two sizes) under root/samples/CAM_X/."""
    rng = np.random.default_rng(0)
    root = tmp_path / "root"
    rels = []
    for i in range(6):
        h, w = (48, 80) if i % 3 else (64, 64)
        rel = f"samples/CAM_{'AB'[i % 2]}/img{i}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / rel)
        rels.append(rel)
    return root, rels


def _direct(teacher, root, rel):
    img = torch.from_numpy(np.array(Image.open(root / rel).convert("RGB"))).permute(2, 0, 1)
    return teacher(img[None])[0]


def test_round_trip_fp16_and_sizes(image_root, tmp_path):
    root, rels = image_root
    t = ConvTeacher()
    s = build_teacher_cache(t, root, rels, tmp_path / "cache", progress=False, shard_images=4)
    assert s["images"] == 6 and s["computed"] == 6 and s["feature_dim"] == s["teacher_dim"] == 16
    assert s["map_sizes"] == {"64x64": [8, 8], "48x80": [6, 10]}
    cache = TeacherCache(tmp_path / "cache", expect=t)
    assert cache.feature_dim == 16 and len(cache) == 6 and rels[0] in cache and "samples/x.png" not in cache
    for rel in rels:
        ref = _direct(t, root, rel)
        got = cache.load(rel)
        assert got.dtype == torch.float32 and got.shape == ref.shape
        # fp16: relative rounding <= 2^-11 (plus subnormal slack)
        assert ((got - ref).abs() <= ref.abs() * 2 ** -11 + 1e-6).all()
    raw = sum(16 * int(np.prod(v)) * 4 for v in [[8, 8], [6, 10], [6, 10], [8, 8], [6, 10], [6, 10]])
    assert s["raw_fp32_bytes"] == raw
    assert raw / 2 <= s["stored_bytes"] < raw / 2 + 4 * 256  # fp16 + .npy headers
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and manifest["teacher"]["name"] == "conv0" and manifest["sizes"]["stored_bytes"] == s["stored_bytes"]


def test_pca_compression_and_decode(image_root, tmp_path):
    root, rels = image_root
    t = ConvTeacher(dim=16, rank=4)  # features span 4 dimensions: a 4-d PCA is exact
    s = build_teacher_cache(t, root, rels, tmp_path / "pca", pca_dim=4, progress=False)
    assert s["feature_dim"] == 4 and s["pca"]["explained_variance"] > 0.9999
    cache = TeacherCache(tmp_path / "pca")
    for rel in rels:
        ref = _direct(t, root, rel)
        coef = cache.load(rel)
        assert coef.shape == (4, *ref.shape[-2:])
        dec = cache.load(rel, decode=True)
        assert dec.shape == ref.shape
        assert (dec - ref).abs().max() <= 2e-3 * ref.abs().max()
    pca_bytes = (tmp_path / "pca" / "pca.npz").stat().st_size
    n_shards = len(list((tmp_path / "pca" / "shards").glob("*.npy")))
    assert s["stored_bytes"] - pca_bytes <= s["raw_fp32_bytes"] / 8 + 128 * n_shards  # 16 -> 4 channels, fp16


def test_fit_pca_matches_svd():
    x = torch.randn(500, 6) @ torch.randn(6, 6) + 3.0
    mean, comps, ratio = fit_pca(x, 3)
    xc = (x - x.mean(0)).double()
    _, sv, vt = torch.linalg.svd(xc, full_matrices=False)
    np.testing.assert_allclose(mean, x.mean(0).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.abs(comps @ vt[:3].numpy().T), np.eye(3), atol=1e-4)  # same subspace, signs free
    assert abs(ratio - float((sv[:3] ** 2).sum() / (sv ** 2).sum())) < 1e-6


def test_resume_after_interruption(image_root, tmp_path, monkeypatch):
    root, rels = image_root
    t = ConvTeacher()
    out = tmp_path / "cache"
    import xmodal.data.teacher_cache as tc

    real, calls = tc._run_teacher, {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(tc, "_run_teacher", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_teacher_cache(t, root, rels, out, progress=False, shard_images=2)
    assert len(TeacherCache(out)) == 2  # the first shard survived, nothing half-written
    assert not list(out.rglob("*.tmp"))
    monkeypatch.setattr(tc, "_run_teacher", real)
    s = build_teacher_cache(t, root, rels, out, progress=False, shard_images=2)
    assert (s["computed"], s["skipped"]) == (4, 2)
    s = build_teacher_cache(t, root, rels, out, progress=False)
    assert (s["computed"], s["skipped"]) == (0, 6)
    cache = TeacherCache(out)
    for rel in rels:
        torch.testing.assert_close(cache.load(rel), _direct(t, root, rel), rtol=1e-3, atol=1e-3)


def test_wrong_schema_teacher_or_pca_fail_with_what_to_run(image_root, tmp_path):
    root, rels = image_root
    out = tmp_path / "cache"
    build_teacher_cache(ConvTeacher(0), root, rels[:2], out, progress=False, command="xmodal teacher cache --root r --teacher t.pt --out c")
    with pytest.raises(DataError, match="written by teacher 'conv0'.*xmodal teacher cache --root r --teacher t.pt --out c --force"):
        TeacherCache(out, expect=ConvTeacher(1))
    with pytest.raises(DataError, match="conv0"):
        build_teacher_cache(ConvTeacher(1), root, rels, out, progress=False)
    with pytest.raises(DataError, match="pca_dim"):
        build_teacher_cache(ConvTeacher(0), root, rels, out, pca_dim=4, progress=False)
    s = build_teacher_cache(ConvTeacher(1), root, rels, out, progress=False, force=True)
    assert s["computed"] == 6 and TeacherCache(out, expect=ConvTeacher(1)).teacher_name == "conv1"
    m = json.loads((out / "manifest.json").read_text())
    m["schema_version"] = 0
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(SchemaError, match="schema_version 0.*xmodal teacher cache.*--force"):
        TeacherCache(out)
    with pytest.raises(DataError, match="no manifest.json"):
        TeacherCache(tmp_path / "nothing")


def test_refuses_foreign_folder_and_bad_paths(image_root, tmp_path):
    root, rels = image_root
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(XmodalError, match="not written by build_teacher_cache"):
        build_teacher_cache(ConvTeacher(), root, rels, foreign, progress=False, force=True)
    assert (foreign / "keep.txt").is_file()
    with pytest.raises(DataError, match="relative"):
        build_teacher_cache(ConvTeacher(), root, ["../x.png"], tmp_path / "c2", progress=False)
    cache_dir = tmp_path / "c3"
    build_teacher_cache(ConvTeacher(), root, rels[:1], cache_dir, progress=False)
    with pytest.raises(DataError, match="has no features for"):
        TeacherCache(cache_dir).load(rels[1])
