"""Run toy trainings of ``engine_toy.run_toy`` in their own process (plain python or torchrun).

    python tests/engine/toy_train.py SPEC_JSON

``SPEC_JSON``: ``{"runs": [{"run_dir": ..., "train": {cfg.train keys}, "opts": {run_toy
keyword arguments, and "sleep" / "sleep_after" for a SleepHook}}, ...], "result": path}``. The
runs share one process group (``distributed_session``); rank 0 writes the list of fit()
summaries to ``result``.
"""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_toy import SleepHook, run_toy  # noqa: E402

from xmodal.engine import distributed_session  # noqa: E402


def main() -> None:
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(1)
    summaries = []
    with distributed_session(device="cpu") as info:  # gloo, also on GPU machines
        for run in spec["runs"]:
            opts = dict(run.get("opts", {}))
            hooks = [SleepHook(opts.pop("sleep"), opts.pop("sleep_after", 0))] if "sleep" in opts else []
            summaries.append(run_toy(run["run_dir"], run["train"], hooks=hooks, **opts).summary)
        if spec.get("result") and info.rank == 0:
            Path(spec["result"]).write_text(json.dumps(summaries))


if __name__ == "__main__":
    main()
