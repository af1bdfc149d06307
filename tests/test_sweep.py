"""`zkauction sweep`: the grid of overrides and seeds, and a tiny real sweep on a local Ray instance
(two runs of a 1x2 full-menu AMA, a few steps each)."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from zkauction.cli import app
from zkauction.learn.checkpoint import load_auction
from zkauction.learn.config import read_config_dict
from zkauction.learn.sweep import SweepError, parse_set, plan, resolve_key, with_overrides

runner = CliRunner()


def tiny_ama(root, tmp_path):
    cfg = tmp_path / "tiny_ama.toml"
    cfg.write_text(
        f'base = "{root / "configs" / "ama_1x2_uniform.toml"}"\nname = "tiny_ama"\n'
        "[train]\nsteps = 6\nbatch_size = 256\neval_every = 3\neval_size = 2000\n"
        "[train.evaluation]\nn_revenue = 5000\nn_regret = 5\n"
        "[train.evaluation.attack]\nsteps = 5\nstarts = 1\ngrid = 5\n"
    )
    return cfg


def test_set_values_keys_and_plan(root):
    assert parse_set("menu_size=64,128, 256") == ("menu_size", [64, 128, 256])
    assert parse_set("train.lr=0.01,3e-3") == ("train.lr", [0.01, 0.003])
    assert parse_set("menu=full,learned")[1] == ["full", "learned"]
    assert parse_set("learn_weights=true")[1] == [True]
    for bad in ("menu_size", "=1", "x="):
        with pytest.raises(SweepError):
            parse_set(bad)
    raw = read_config_dict(root / "configs" / "ama_3x10_uniform.toml")
    assert resolve_key(raw, "menu_size") == ("net", "menu_size")
    assert resolve_key(raw, "lr") == ("train", "lr")
    assert resolve_key(raw, "train.evaluation.n_regret") == ("train", "evaluation", "n_regret")
    with pytest.raises(SweepError, match="several tables"):
        resolve_key(raw, "seed")  # in [net] and [train]
    with pytest.raises(SweepError, match="no table"):
        resolve_key(raw, "nonsense")
    runs = plan(raw, ["menu_size=64,128", "lr=0.01,0.003"], seeds=3)
    assert len(runs) == 12 and len({r["name"] for r in runs}) == 12
    assert {r["seed"] for r in runs} == {0, 1, 2}
    first = runs[0]
    assert first["overrides"] == {("net", "menu_size"): 64, ("train", "lr"): 0.01, ("train", "seed"): 0, ("net", "seed"): 0}
    changed = with_overrides(raw, first["overrides"])
    assert changed["net"]["menu_size"] == 64 and raw["net"]["menu_size"] == 64  # 64 in the config itself
    assert with_overrides(raw, {("train", "lr"): 1.0})["train"]["lr"] == 1.0 and raw["train"]["lr"] == 0.003
    with pytest.raises(SweepError, match="--seeds"):
        plan(raw, ["train.seed=1,2"], seeds=1)


def test_sweep_on_local_ray(root, tmp_path):
    pytest.importorskip("ray")  # installed by the test extras; the rest of the package never imports it
    cfg = tiny_ama(root, tmp_path)
    out = tmp_path / "sweep"
    r = runner.invoke(app, ["sweep", str(cfg), "--out", str(out), "--set", "lr=0.02,0.002", "--seeds", "1",
                            "--num-cpus", "2", "--holdout", "3000", "--holdout-regret", "5", "--no-progress", "--json"])
    assert r.exit_code == 0, (r.output, r.exception)
    record = json.loads((out / "sweep.json").read_text())
    assert len(record["runs"]) == 2
    for run in record["runs"]:
        folder = out / "runs" / run["name"]
        assert {"config.json", "weights.pt", "metrics.json", "train_log.jsonl"} <= {p.name for p in folder.iterdir()}
        assert run["holdout"]["regret"] == 0.0 and run["holdout"]["n_revenue"] == 3000
        assert run["train_wall_seconds"] is not None
        assert json.loads((folder / "config.json").read_text())["experiment"]["train"]["lr"] == run["overrides"]["train.lr"]
    best = max(record["runs"], key=lambda x: x["holdout"]["score"])
    assert record["best"] == best["name"]
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    assert metrics["sweep"]["run"] == best["name"] and metrics["evaluation"]["n_revenue"] == 5000
    assert metrics["evaluation"]["regret"] == 0.0
    assert load_auction(out / "best").kind == "ama"
    # a finished sweep is not replaced without --force
    r = runner.invoke(app, ["sweep", str(cfg), "--out", str(out), "--no-progress"])
    assert r.exit_code == 2 and "--force" in r.output


def test_sweep_errors_are_one_line(root, tmp_path):
    cfg = tiny_ama(root, tmp_path)
    r = runner.invoke(app, ["sweep", str(cfg), "--out", str(tmp_path / "s"), "--set", "nonsense=1,2"])
    assert r.exit_code == 2 and r.output.strip().startswith("error:") and "nonsense" in r.output


def test_ray_is_imported_only_by_a_sweep():
    code = ("import sys, zkauction.cli, zkauction.learn.train, zkauction.learn.ama_train, zkauction.learn.sweep; "
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
