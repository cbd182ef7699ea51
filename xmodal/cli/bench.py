"""``xmodal bench ops``: the ops against their peers (see xmodal/bench/ops.py, docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import json


def _threads(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected thread counts like '1,2', got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be >= 1, got {text!r}")
    return values


def add_bench_parser(sub) -> None:
    bench = sub.add_parser("bench", help="benchmarks against peers, reported as ratios")
    bsub = bench.add_subparsers(dest="what", required=True)
    o = bsub.add_parser(
        "ops",
        help="segment pooling, the SLidR step, projection, superpixels, voxelization and BEV pooling vs their peers",
        description="Times each op and its peers on the same inputs, interleaved, at each CPU thread count "
        "(and on CUDA when present), and prints speed-ups (peer time / our time).",
    )
    o.add_argument("--json", metavar="FILE", help="also write all rows and the machine description to FILE")
    o.add_argument("--threads", type=_threads, default=(1, 2), help="CPU thread counts, comma separated (default 1,2)")
    o.add_argument("--cases", nargs="+", metavar="CASE", help="subset of cases (default: all; see xmodal.bench.ops.CASES)")
    o.add_argument("--quick", action="store_true", help="tiny sizes: checks the plumbing, the numbers mean nothing")
    o.add_argument("--no-cuda", action="store_true", help="skip the CUDA rows even when a GPU is present")
    o.set_defaults(func=cmd_bench_ops)


def format_rows(rows: list[dict]) -> str:
    """A markdown table of the benchmark rows."""
    lines = ["| case | device | threads | ours ms | peer | peer ms | speed-up | memory (ours / peer) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mem = ""
        if r.get("peak_bytes") is not None and r.get("peer_peak_bytes"):
            mem = f"{r['peak_bytes'] / 2**20:.0f} / {r['peer_peak_bytes'] / 2**20:.0f} MiB ({r['peak_bytes'] / r['peer_peak_bytes']:.3f})"
        peer_ms = f"{r['peer_ms']:.1f}" if "peer_ms" in r else ""
        speed = f"{r['speedup']:.2f}x" if "speedup" in r else ""
        lines.append(f"| {r['case']} | {r['device']} | {r.get('threads') or ''} | {r['ms']:.1f} | {r.get('peer', '')} | "
                     f"{peer_ms} | {speed} | {mem} |")
    return "\n".join(lines)


def cmd_bench_ops(a: argparse.Namespace) -> None:
    from xmodal.bench.harness import machine_info
    from xmodal.bench.ops import CASES, run_ops_benchmark
    from xmodal.errors import ConfigError
    from xmodal.utils.atomic import atomic_write, writable_parent

    if a.cases:
        unknown = [c for c in a.cases if c not in CASES]
        if unknown:
            raise ConfigError(f"--cases: unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if a.json:
        writable_parent(a.json, "--json")  # fail before minutes of measuring
    rows = run_ops_benchmark(a.cases, threads=a.threads, quick=a.quick, cuda=False if a.no_cuda else None)
    print(format_rows(rows))
    if a.json:
        report = {"machine": machine_info(), "quick": a.quick, "threads": list(a.threads), "rows": rows}
        with atomic_write(a.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {a.json}")
