"""`xmodal bench ops` plumbing (tiny sizes: the numbers are not checked, the harness is)."""

from __future__ import annotations

import json

import pytest
import torch

from xmodal.bench.harness import peak_memory, time_interleaved
from xmodal.cli.main import main


@pytest.mark.parametrize("mib", [64, 256])
def test_peak_memory_sees_a_temporary_tensor(mib):
    peak = peak_memory("xmodal.bench.harness:temporary_tensor", {"mib": mib})
    assert peak is not None and (mib - 4) * 2**20 <= peak <= (mib + 16) * 2**20


def test_peak_memory_works_after_this_process_used_threads():
    torch.set_num_threads(2)
    torch.randn(2000, 2000) @ torch.randn(2000, 2000)  # the OpenMP pool is up (a fork would hang)
    assert peak_memory("xmodal.bench.harness:temporary_tensor", {"mib": 32}) >= 28 * 2**20


def test_time_interleaved_reports_each_callable():
    t = time_interleaved({"a": lambda: sum(range(1000)), "b": lambda: sum(range(10))}, repeat=3)
    assert set(t) == {"a", "b"} and all(v >= 0 for v in t.values())


def test_bench_ops_cli_quick(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "ops", "--quick", "--threads", "1", "--no-cuda", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] and report["quick"] is True
    cases = {r["case"] for r in report["rows"]}
    from xmodal.bench.ops import CASES

    assert len(report["rows"]) >= len(CASES)
    assert all(r["speedup"] > 0 for r in report["rows"] if "speedup" in r)
    assert any("SLidR step" in c for c in cases)
    assert "| case |" in capsys.readouterr().out


def test_bench_ops_cli_errors(capsys):
    assert main(["bench", "ops", "--cases", "nope"]) == 2
    assert "unknown case" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "ops", "--threads", "0"])
