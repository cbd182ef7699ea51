"""Split files: the shipped lists, SLidR's skip rule, the format's errors and Split.filter."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import warnings
from pathlib import Path

import pytest
from nuscenes.utils.splits import create_splits_scenes

from xmodal.errors import DataError
from xmodal.evaluation.splits import (
    SPLITS_DIR,
    every_kth_keyframe,
    load_split,
    shipped_split,
    slidr_skip_scenes,
    write_frame_split,
    write_split,
)

SPLITS = create_splits_scenes(verbose=False)


def make_splits_tool():
    spec = importlib.util.spec_from_file_location("make_splits", SPLITS_DIR.parents[1] / "tools" / "make_splits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def slidr_loop(scene_table: list[str], phase_scenes: list[str], skip_ratio: int) -> list[str]:
    """SLidR's selection written out as its loop does it (counter incremented, then tested)."""
    kept, counter = [], 0
    for name in scene_table:
        if name in phase_scenes:
            counter += 1
            if counter % skip_ratio == 0:
                kept.append(name)
    return kept


@pytest.mark.parametrize("step,pct,count", [(100, 1, 7), (20, 5, 35), (10, 10, 70), (4, 25, 175)])
def test_shipped_slidr_fractions(step, pct, count):
    s = shipped_split(f"nuscenes_train_scenes_every{step}th_slidr-{pct}pct")
    assert s.kind == "scenes" and len(s.items) == count and s.fraction == pytest.approx(pct / 100)
    assert set(s.items) <= set(SPLITS["train"])
    # the name-sorted devkit train list walked the way SLidR walks its scene table
    assert list(s.items) == slidr_loop(sorted(SPLITS["train"]), SPLITS["train"], step)
    assert s.items[0] == sorted(SPLITS["train"])[step - 1]  # the step-th scene, not the first
    assert "SLidR" in s.header["anchor"] and s.header["order"]


def test_shipped_full_lists_and_describe():
    for split, n in [("train", 700), ("val", 150), ("mini_train", 8), ("mini_val", 2)]:
        s = shipped_split(f"nuscenes_{split}_scenes.txt")
        assert list(s.items) == list(SPLITS[split]) and len(s.items) == n and s.fraction == 1.0
    d = s.describe()
    assert d["name"] == "nuscenes_mini_val_scenes" and d["kind"] == "scenes" and d["count"] == 2
    assert d["sha256"] == hashlib.sha256(Path(d["file"]).read_bytes()).hexdigest()
    json.dumps(d)


def test_committed_files_are_what_the_tool_writes(tmp_path, capsys):
    tool = make_splits_tool()
    assert tool.check(SPLITS_DIR, None) == 0, capsys.readouterr().out
    written = tool.nuscenes_files(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in SPLITS_DIR.glob("*.txt"))


def test_scene_table_order_is_what_slidr_walks(tmp_path):
    """With a scene table out of name order, the rule follows the table (as SLidR does)."""
    table = list(SPLITS["train"]) + list(SPLITS["val"])
    random.Random(0).shuffle(table)
    for step in (1, 4, 100):
        assert slidr_skip_scenes(SPLITS["train"], step, table) == slidr_loop(table, SPLITS["train"], step)
    assert slidr_skip_scenes(SPLITS["train"], 1, table) == [s for s in table if s in set(SPLITS["train"])]
    (tmp_path / "scene.json").write_text(json.dumps([{"name": n} for n in table]))
    tool = make_splits_tool()
    out = tmp_path / "out"
    tool.nuscenes_files(out, tmp_path / "scene.json")
    one = load_split(out / "nuscenes_train_scenes_every100th_slidr-1pct.txt")
    assert list(one.items) == slidr_loop(table, SPLITS["train"], 100)
    assert str(tmp_path / "scene.json") in one.header["order"]
    assert tool.check(SPLITS_DIR, tmp_path / "scene.json") == 1  # other scenes than the shipped ones


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.txt"
    p.write_text(text)
    return p


HEAD = "# kind: scenes\n# rule: r\n# source: s\n# fraction: 0.5\n"


@pytest.mark.parametrize(
    "text,match",
    [
        ("# kind: scenes\n# rule: r\nscene-0001\n", r"lacks source, fraction"),
        ("# kind: sweeps\n# rule: r\n# source: s\n# fraction: 1\nx\n", r"unknown kind 'sweeps'; allowed: scenes, frames"),
        (HEAD.replace("0.5", "half") + "scene-0001\n", r"fraction 'half' is not a number"),
        (HEAD.replace("0.5", "2") + "scene-0001\n", r"must lie in \(0, 1\]"),
        (HEAD, "holds no items"),
        (HEAD + "scene-0001\nscene-0001\n", "listed twice: scene-0001"),
        (HEAD + "# count: 3\nscene-0001\n", "count 3 but the file lists 1"),
        (HEAD + "scene-0001 scene-0002\n", "line 5: 'scene-0001 scene-0002' is not one item"),
        (HEAD + "# kind: frames\nx\n", "line 5: header key 'kind' given twice"),
    ],
)
def test_bad_files_name_the_file(tmp_path, text, match):
    with pytest.raises(DataError, match=match) as e:
        load_split(_write(tmp_path, text))
    assert str(tmp_path / "s.txt") in str(e.value)


def test_missing_file_lists_the_shipped_ones(tmp_path):
    with pytest.raises(DataError, match="nuscenes_train_scenes_every100th_slidr-1pct.txt"):
        load_split(tmp_path / "nope.txt")


def test_comments_and_round_trip(tmp_path):
    p = write_split(tmp_path / "my.txt", "frames", ["a" * 32, "b" * 32], "rule x", "src", 0.25,
                    extra={"dataset": "d"}, comments=["scene-0001 1", "scene-0002 2"])  # fmt: skip
    s = load_split(p)
    assert s.items == ("a" * 32, "b" * 32) and s.name == "my" and s.header["dataset"] == "d"
    assert s.kind == "frames" and s.key == "token" and s.fraction == 0.25


def infos(scenes: dict[str, int]) -> list[dict]:
    """Fake info entries: ``n`` keyframes per scene, listed in a shuffled order."""
    out = [{"token": f"{name}-{i}", "scene_name": name, "timestamp": 1000 * i + 7} for name, n in scenes.items() for i in range(n)]
    random.Random(1).shuffle(out)
    return out


def test_filter_scenes_frames_and_errors(tmp_path):
    data = infos({"scene-0061": 3, "scene-0103": 2})
    mini = shipped_split("nuscenes_mini_train_scenes")
    with pytest.warns(UserWarning, match="7 of its 8 scenes are not in the data"):
        kept = mini.filter(data)
    assert [e["token"] for e in kept] == [e["token"] for e in data if e["scene_name"] == "scene-0061"]
    with pytest.raises(DataError, match="7 of its 8 scenes"):
        mini.filter(data, require_all=True)
    with pytest.raises(DataError) as e:
        shipped_split("nuscenes_train_scenes_every100th_slidr-1pct").filter(data)
    msg = str(e.value)
    assert "SLidR issue #19" in msg and "scene-0061, scene-0103" in msg and "every100th" in msg
    both = load_split(write_split(tmp_path / "both.txt", "scenes", ["scene-0103", "scene-0061"], "r", "s", 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every scene present: no warning
        assert [e["token"] for e in both.filter(data, require_all=True)] == [e["token"] for e in data]
    frames = load_split(write_frame_split(tmp_path / "f.txt", data, 2, "fake"))
    assert [e["token"] for e in frames.filter(data)] == [e["token"] for e in data if e["token"] in set(frames.items)]
    with pytest.raises(DataError, match="frames, 3 items"):
        frames.filter(infos({"scene-0916": 2}))


def test_every_kth_keyframe_order_and_start(tmp_path):
    data = infos({"scene-0103": 3, "scene-0061": 4})
    order = [f"scene-0061-{i}" for i in range(4)] + [f"scene-0103-{i}" for i in range(3)]
    assert [e["token"] for e in every_kth_keyframe(data, 1)] == order
    assert [e["token"] for e in every_kth_keyframe(data, 3)] == order[0::3]
    assert [e["token"] for e in every_kth_keyframe(data, 3, start=2)] == order[2::3]
    with pytest.raises(ValueError, match="start < k"):
        every_kth_keyframe(data, 3, start=3)
    p = write_frame_split(tmp_path / "nuscenes_fake_frames_every3rd.txt", data, 3, "fake infos")
    s = load_split(p)
    assert s.kind == "frames" and s.items == tuple(order[0::3]) and s.fraction == pytest.approx(3 / 7)
    assert s.rule.startswith("every 3rd keyframe (0-based positions 0, 3, ...)")
    assert p.read_text().count("# scene-0061") == 2  # human-readable scene + timestamp comments


def test_frame_list_from_a_real_info_file(driving_world, tmp_path):
    from xmodal.data.nuscenes_info import load_infos, prepare_nuscenes

    prepare_nuscenes(driving_world, "v1.0-mini", tmp_path / "i.pkl", split="all", max_sweeps=0, progress=False)
    data = load_infos(tmp_path / "i.pkl")["data_list"]
    tool = make_splits_tool()
    out = tmp_path / "nuscenes_synth_frames_every2nd.txt"
    assert tool.main(["frames", "--info", str(tmp_path / "i.pkl"), "--every", "2", "--out", str(out)]) == 0
    s = load_split(out)
    kept = s.filter(data)
    assert len(kept) == len(s.items) == 3  # 6 keyframes, every 2nd
    assert {e["token"] for e in kept} == {e["token"] for e in every_kth_keyframe(data, 2)}
    assert "v1.0-mini" in s.source
    with pytest.raises(DataError, match=r"scene-0061, scene-0103.*SLidR issue #19"):
        shipped_split("nuscenes_train_scenes_every100th_slidr-1pct").filter(data)


def test_no_match_outside_mini_gets_the_generic_hint():
    with pytest.raises(DataError, match="covers other scenes") as e:
        shipped_split("nuscenes_val_scenes").filter(infos({"scene-0001": 2}))
    assert "#19" not in str(e.value)
