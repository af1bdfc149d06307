"""Train several experiment configs at once on one GPU inside a fixed time budget.

Made for a short GPU lease (this project's device machine gives a session 15 minutes): every config
first runs a few iterations concurrently with the others (a probe, so the timing includes the
contention between them); each config's phases are then scaled down by the same factor so that the
whole schedule fits ``--budget`` seconds, and written beside the original as ``<config>_gpu.toml``
(``base = "<original>"`` plus the scaled phases), so the run that produced a net is reproducible
with ``zkauction train configs/<name>_gpu.toml --out trained/<name> --device cuda``. Finally every
config trains concurrently on the GPU (one process each) and the trained folders are packed into
one tar file (train_state.pt left out).

    python benchmarks/gpu_train.py --configs configs/3x10_scenario1_improved.toml:trained/3x10_scenario1,... \\
        --budget 300 --tar $OUT/trained.tar.gz

Phases never grow: a config whose probe says it fits keeps its schedule. The probe costs about
``--probe`` iterations per config; the per-iteration cost of later phases is extrapolated from the
number of misreport steps (the attacker's steps dominate an iteration).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from zkauction.learn.config import load_config  # noqa: E402
from zkauction.learn.train import Phase, TrainConfig, train  # noqa: E402


def _probe(config: str, folder: str, iterations: int, device: str) -> None:
    cfg = load_config(config)
    train(cfg, folder, progress=False, evaluate_at_end=False, stop_after=3, device=device)  # warm-up
    t0 = time.monotonic()
    train(cfg, folder, resume=True, progress=False, evaluate_at_end=False, stop_after=iterations, device=device)
    print(json.dumps({"config": config, "seconds_per_iteration": (time.monotonic() - t0) / iterations}), flush=True)


def _train(config: str, out: str, device: str) -> None:
    cfg = load_config(config)
    t0 = time.monotonic()
    train(cfg, out, progress=False, evaluate_at_end=False, device=device,
          command=f"zkauction train {config} --out {out} --device {device} --no-eval (benchmarks/gpu_train.py)")
    print(json.dumps({"config": config, "out": out, "wall_seconds": round(time.monotonic() - t0, 1)}), flush=True)


def phase_cost(p: Phase) -> float:
    """Relative cost of one iteration of ``p``: the attacker's steps plus about two for the update."""
    return p.misreport_steps + 2.0


def scaled_phases(schedule: list[Phase], seconds_per_iteration_first: float, budget: float) -> tuple[list[dict], float]:
    unit = seconds_per_iteration_first / phase_cost(schedule[0])
    estimate = sum(p.iterations * phase_cost(p) * unit for p in schedule)
    scale = min(1.0, budget / estimate)
    phases = []
    for p in schedule:
        d = {"iterations": max(1, round(p.iterations * scale)), "lr": p.lr, "regret_weight": p.regret_weight,
             "misreport_steps": p.misreport_steps}
        if p.sqrt_regret_weight != 1.0:
            d["sqrt_regret_weight"] = p.sqrt_regret_weight
        phases.append(d)
    return phases, scale


def write_scaled(config: Path, phases: list[dict], scale: float, seconds_per_iteration: float, device_name: str) -> Path:
    out = config.with_name(config.stem + "_gpu.toml")
    name = load_config(config).name
    rows = ",\n".join("  { " + ", ".join(f"{k} = {v!r}" for k, v in p.items()) + " }" for p in phases)
    out.write_text(
        f"# {config.name} with its phases scaled by {scale:.3f} to fit a GPU time budget (benchmarks/gpu_train.py;\n"
        f"# probe: {seconds_per_iteration * 1000:.1f} ms per first-phase iteration on {device_name}, all configs at once).\n"
        f'base = "{config.name}"\nname = "{name}"\n\n[train]\nphases = [\n{rows},\n]\n'
    )
    return out


def run_all(cmds: list[list[str]]) -> list[str]:
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True) for c in cmds]
    outs = []
    for p, c in zip(procs, cmds):
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"failed ({p.returncode}): {' '.join(c)}")
        outs.append(out)
    return outs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", required=True, help="comma-separated CONFIG:OUT pairs")
    ap.add_argument("--budget", type=float, required=True, help="seconds of training for all configs together")
    ap.add_argument("--probe", type=int, default=20, help="iterations timed per config")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tar", type=Path, default=None, help="pack the trained folders into this .tar.gz")
    args = ap.parse_args(argv)
    import torch

    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    pairs = [tuple(x.split(":", 1)) for x in args.configs.split(",") if x]
    me = [sys.executable, str(Path(__file__).resolve())]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        outs = run_all([me + ["_probe", c, f"{tmp}/probe{i}", str(args.probe), args.device] for i, (c, _) in enumerate(pairs)])
        probes = {json.loads(o.strip().splitlines()[-1])["config"]: json.loads(o.strip().splitlines()[-1])["seconds_per_iteration"] for o in outs}
        print(f"probe ({time.monotonic() - t0:.0f} s): " + ", ".join(f"{c} {s * 1000:.1f} ms/it" for c, s in probes.items()), flush=True)
    scaled = []
    for c, out in pairs:
        schedule = TrainConfig.from_dict(load_config(c).train).schedule()
        phases, scale = scaled_phases(schedule, probes[c], args.budget)
        path = write_scaled(Path(c), phases, scale, probes[c], device_name)
        print(f"{c}: scale {scale:.3f} -> {path} ({sum(p['iterations'] for p in phases)} iterations)", flush=True)
        scaled.append((str(path), out))
    t0 = time.monotonic()
    for o in run_all([me + ["_train", c, out, args.device] for c, out in scaled]):
        print(o.strip(), flush=True)
    print(f"trained {len(scaled)} configs in {time.monotonic() - t0:.0f} s on {device_name}", flush=True)
    if args.tar:
        with tarfile.open(args.tar, "w:gz") as tar:
            for c, out in scaled:
                tar.add(c, arcname=c)
                for f in sorted(Path(out).iterdir()):
                    if f.name != "train_state.pt":
                        tar.add(f, arcname=str(Path(out) / f.name))
        print(f"wrote {args.tar}", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_probe":
        _probe(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif len(sys.argv) > 1 and sys.argv[1] == "_train":
        _train(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(main())
