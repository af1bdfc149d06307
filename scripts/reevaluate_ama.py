"""Re-run the evaluation of shipped affine maximizers with the options their metrics.json records.

Used when the eval-mode auction changed without retraining: since the constants are put on the
2^-grid_scale grid (zkauction.learn.ama, AffineMaximizerAuction.refresh_menu) the shipped nets'
figures are those of the snapped auction, which is what is compiled and proved. The training
fields of metrics.json stay; ``evaluation`` and ``evaluation_wall_seconds`` are replaced and
``reevaluated`` records the command and the previous revenue; config.json gains the net's full
hyper-parameters (grid_scale). Weights are not touched.

    .venv/bin/python scripts/reevaluate_ama.py trained/ama_2x2_uniform [more folders ...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from zkauction.learn.ama_train import evaluate_ama, evaluation_options
from zkauction.learn.checkpoint import load_auction, net_description, write_metrics


def reevaluate(folder: Path) -> tuple[float, float]:
    net = load_auction(folder)
    if net.kind != "ama":
        raise SystemExit(f"{folder}: not an affine maximizer (kind {net.kind!r})")
    metrics_path = folder / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    old = metrics["evaluation"]
    metrics.update(evaluate_ama(net, evaluation_options(old)))
    metrics["reevaluated"] = {
        "command": f"python scripts/reevaluate_ama.py {folder}",
        "reason": f"eval-mode constants on the 2^-{net.grid_scale} grid (grid_scale), weights powers of two",
        "previous_revenue": old["revenue"],
        "date": time.strftime("%Y-%m-%d"),
    }
    write_metrics(folder, metrics)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config.update(net_description(net))
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return old["revenue"], metrics["evaluation"]["revenue"]


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for arg in sys.argv[1:]:
        before, after = reevaluate(Path(arg))
        print(f"{arg}: revenue {before:.4f} -> {after:.4f}", flush=True)
