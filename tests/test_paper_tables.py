"""The paper-tables benchmark (benchmarks/paper_tables.py) and the paper's experiment configs."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from zkauction.learn.checkpoint import save_checkpoint, write_metrics
from zkauction.learn.config import load_config
from zkauction.learn.evaluate import evaluate
from zkauction.learn.nets import RegretNet
from zkauction.learn.regret import AttackConfig
from zkauction.learn.setting import AuctionSetting, ParticipationModel
from zkauction.learn.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def _load_module():
    spec = importlib.util.spec_from_file_location("paper_tables", ROOT / "benchmarks" / "paper_tables.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["paper_tables"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


pt = _load_module()

# The paper's q-tables as printed (section 6; appendix A.5, Table 4).
PAPER_Q_2x2 = {1: (0.16, 0.04, 0.64, 0.16), 2: (0.35, 0.15, 0.35, 0.15), 3: (0.63, 0.07, 0.27, 0.03)}
PAPER_Q_3x10 = {
    1: (0.032, 0.128, 0.128, 0.008, 0.032, 0.032, 0.512, 0.128),
    2: (0.175, 0.175, 0.175, 0.075, 0.075, 0.075, 0.175, 0.075),
    3: (0.441, 0.189, 0.189, 0.049, 0.021, 0.021, 0.091, 0.009),
}


@pytest.mark.parametrize("key", ["2x2", "3x10"])
@pytest.mark.parametrize("s", [1, 2, 3])
def test_scenario_tables_sum_to_one_and_match_the_paper(key: str, s: int) -> None:
    model = pt.scenario_model(key, s)
    assert math.isclose(sum(model.probabilities), 1.0, abs_tol=1e-9)
    printed = (PAPER_Q_2x2 if key == "2x2" else PAPER_Q_3x10)[s]
    assert len(model.probabilities) == len(printed)
    for g, q, p in zip(model.profile_strings(), model.probabilities, printed):
        if key == "3x10" and s == 3 and g == "001":
            # The paper's typo: 0.091 for 0.081 (its row sums to 1.01).
            assert math.isclose(q, 0.081, abs_tol=1e-9) and math.isclose(sum(printed), 1.01, abs_tol=1e-9)
        else:
            assert math.isclose(q, p, abs_tol=1e-9), (key, s, g)
    # The config files use the same models.
    cfg = load_config(ROOT / "configs" / f"{key}_scenario{s}.toml")
    assert cfg.participation == model
    assert load_config(ROOT / "configs" / f"{key}_scenario{s}_improved.toml").participation == model


def test_paper_configs_carry_the_papers_hyperparameters() -> None:
    for name in ("2x2_untweaked", "2x2_scenario1", "2x2_scenario2", "2x2_scenario3"):
        cfg = load_config(ROOT / "configs" / f"{name}.toml")
        tc = TrainConfig.from_dict(cfg.train)
        assert (cfg.setting.n, cfg.setting.m) == (2, 2)
        assert cfg.net["depth"] == 7 and cfg.net["width"] == 100
        assert tc.dataset_size == 20_000 and tc.attacker == "network"
        assert (tc.misreport_depth, tc.misreport_width, tc.misreport_lr) == (7, 100, 1e-5)
        assert (tc.misreport_steps, tc.misreport_patience) == (300, 100)
        assert [(p.iterations, p.lr) for p in tc.schedule()] == [(100, 5e-4), (100, 5e-5), (100, 5e-6)]
    for name in ("3x10_untweaked", "3x10_scenario1", "3x10_scenario2", "3x10_scenario3"):
        cfg = load_config(ROOT / "configs" / f"{name}.toml")
        tc = TrainConfig.from_dict(cfg.train)
        assert (cfg.setting.n, cfg.setting.m) == (3, 10)
        assert cfg.net["depth"] == 17 and cfg.net["width"] == 120
        assert (tc.misreport_depth, tc.misreport_width, tc.misreport_steps) == (17, 120, 100)
        assert tc.misreport_patience >= tc.misreport_steps  # no early stopping
        assert [(p.iterations, p.lr) for p in tc.schedule()] == [(200, 5e-4), (200, 5e-5), (200, 5e-6)]
    assert load_config(ROOT / "configs" / "2x2_untweaked.toml").participation == ParticipationModel.fixed(2)
    assert load_config(ROOT / "configs" / "3x10_untweaked.toml").participation == ParticipationModel.fixed(3)
    for key in ("2x2", "3x10"):
        for name in ("untweaked", "scenario1", "scenario2", "scenario3"):
            tc = TrainConfig.from_dict(load_config(ROOT / "configs" / f"{key}_{name}_improved.toml").train)
            assert tc.attacker in ("gradient", "grid") and tc.total_iterations > 300


def _tiny_net(participation: ParticipationModel | None = None, seed: int = 0) -> RegretNet:
    torch.manual_seed(seed)
    return RegretNet(AuctionSetting(2, 2), participation, depth=1, width=8)


TINY_ATTACK = AttackConfig(steps=3, starts=1, grid=5, refine=False)


@pytest.mark.parametrize("s", [1, 2, 3])
def test_untweaked_net_is_evaluated_on_each_scenarios_tweaked_data(s: int) -> None:
    """Reweighting the all-profile evaluation with a scenario's q equals evaluating the untweaked net
    with that scenario's participation model (same per-profile test data, same attack)."""
    net = _tiny_net()  # trained "untweaked": fixed participation
    all_profiles = pt.evaluate_all_profiles(net, "2x2", n_revenue=300, n_regret=6, seed=7, attack=TINY_ATTACK)
    assert net.participation == ParticipationModel.fixed(2)  # the net itself is untouched
    model = pt.scenario_model("2x2", s)
    got = pt.reweight(all_profiles, model, None)
    net.participation = model
    direct = evaluate(net, n_revenue=300, n_regret=6, seed=7, attack=TINY_ATTACK)
    assert [p.profile for p in got.per_profile] == [p.profile for p in direct.per_profile] == ["11", "10", "01", "00"]
    assert math.isclose(got.revenue, direct.revenue, rel_tol=1e-6)
    assert math.isclose(got.regret, direct.regret, rel_tol=1e-6, abs_tol=1e-12)
    assert math.isclose(got.score, direct.score, rel_tol=1e-6, abs_tol=1e-12)
    # And the aggregate is the q-weighted sum of the profiles.
    assert math.isclose(got.revenue, sum(q * p.revenue for q, p in zip(model.probabilities, got.per_profile)), rel_tol=1e-9)


def test_reweight_adds_the_a3_bounds() -> None:
    ev = pt.evaluate_all_profiles(_tiny_net(), "2x2", n_revenue=200, n_regret=4, seed=1, attack=TINY_ATTACK)
    model = pt.scenario_model("2x2", 1)
    optima = pt.optima_for("2x2", model)
    assert optima["11"] == pt.REV_STAR_2x2_BOTH and math.isclose(optima["01"], 0.5492, abs_tol=1e-4)
    agg = pt.reweight(ev, model, optima)
    assert math.isclose(agg.optimum, 0.16 * 0.8745 + 0.68 * optima["01"], rel_tol=1e-9)
    for p in agg.per_profile:
        if p.probability > 0:
            assert math.isclose(p.bounds["lemma_a1_regret_upper"], agg.regret / p.probability, rel_tol=1e-9)
    with pytest.raises(KeyError, match="not evaluated"):
        pt.reweight(ev, pt.scenario_model("3x10", 1), None)


def _tiny_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for k, (name, probs) in enumerate((("2x2_scenario1", (0.2, 0.8)), ("2x2_scenario2", (0.5, 0.7)), ("2x2_untweaked", None))):
        net = _tiny_net(ParticipationModel.independent(probs) if probs else None, seed=k)
        save_checkpoint(net, root / "trained" / name)
        write_metrics(root / "trained" / name, {"train_wall_seconds": 12.5, "iterations": 3, "name": name})
    return root


def test_report_writer_end_to_end_on_tiny_nets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, out = _tiny_root(tmp_path), tmp_path / "out"
    args = ["--root", str(root), "--out", str(out), "--settings", "2x2", "--n-revenue", "200", "--n-regret", "3",
            "--attack-steps", "2", "--attack-starts", "1", "--write-metrics"]
    assert pt.main(args) == 0
    md = (out / "paper_tables.md").read_text()
    for heading in ("Table 1:", "Table 2:", "Table 3:", "Appendix A.3 bounds", "The paper's targets", "Training cost", "Not available"):
        assert heading in md
    for paper_figure in ("0.375", "0.444", "0.577", "0.822", "0.688", "0.886", "0.927"):
        assert paper_figure in md
    assert "0.473" in md and "0.542" in md and "0.695" in md  # item-wise Myerson per scenario
    assert "ours, scenario 3: trained/2x2_scenario3 not trained" in md
    data = json.loads((out / "paper_tables.json").read_text())
    ents = data["settings"]["2x2"]["entries"]
    assert set(ents) == {"item-wise Myerson", "ours, scenario 1", "ours, scenario 2", "ours, untweaked"}
    assert [p["profile"] for p in ents["ours, untweaked"]["evaluation"]["per_profile"]] == ["11", "10", "01", "00"]
    # Table 2 rows: the untweaked net tested on untweaked data and on each scenario.
    assert [r["tested_on"] for r in data["derived"]["2x2"]["untweaked"]] == ["untweaked", "1", "2", "3"]
    # Measured item-wise Myerson: exact revenue within sampling error, no regret found.
    my = pt.reweight(ents["item-wise Myerson"]["evaluation"], ParticipationModel.fixed(2), None)
    assert abs(my.revenue - 5 / 6) < 0.05 and my.regret < 1e-6
    assert (out / "paper_tables.png").stat().st_size > 10_000
    # Our nets' own-scenario evaluation went into their metrics.json.
    m = json.loads((root / "trained" / "2x2_scenario1" / "metrics.json").read_text())
    assert [p["profile"] for p in m["evaluation"]["per_profile"]] == ["11", "10", "01", "00"]
    assert [p["profile"] for p in m["evaluation_per_profile"]] == ["11", "10", "01", "00"]
    assert math.isclose(m["evaluation"]["per_profile"][2]["probability"], 0.64)
    assert m["train_wall_seconds"] == 12.5
    # A second run reuses the cached evaluations.
    capsys.readouterr()
    assert pt.main(args) == 0
    assert capsys.readouterr().out.count("cached") == 4
