import pytest
import torch

from zkauction.learn.checkpoint import load_auction, read_metrics
from zkauction.learn.config import ConfigError, load_config
from zkauction.learn.data import sample_tweaked
from zkauction.learn.train import PAPER_LRS, STATE_FILE, TrainConfig, loss_fn, train


def test_loss_has_the_corrected_sign():
    rev = torch.tensor(0.8)
    low, high = loss_fn(rev, torch.tensor(1e-4), 1.0), loss_fn(rev, torch.tensor(1e-2), 1.0)
    assert high > low  # more regret, more loss
    assert loss_fn(torch.tensor(0.9), torch.tensor(1e-4), 1.0) < low  # more revenue, less loss
    r = torch.tensor(0.01)
    assert abs((loss_fn(rev, r, 5.0) - loss_fn(rev, r, 0.0)).item() - 0.05) < 1e-6


def test_default_schedule_is_the_papers():
    ph = TrainConfig(iterations=300).schedule()
    assert [p.lr for p in ph] == list(PAPER_LRS) and [p.iterations for p in ph] == [100, 100, 100]
    ph = TrainConfig.from_dict({"phases": [{"iterations": 5, "lr": 1e-3}, {"iterations": 2, "regret_weight": 9}]}).schedule()
    assert ph[1].lr == 1e-3 and ph[1].regret_weight == 9 and ph[0].regret_weight == 1.0
    with pytest.raises(ConfigError, match="unknown key"):
        TrainConfig.from_dict({"iters": 3})
    with pytest.raises(ConfigError, match="phase 0"):
        TrainConfig.from_dict({"phases": [{"lr": 1e-3}]})


@pytest.fixture
def tiny(root):
    return load_config(root / "configs" / "tiny.toml")


def test_train_writes_checkpoint_and_net_honours_contract(tiny, tmp_path):
    net = train(tiny, tmp_path / "t", progress=False, command="test")
    for f in ("config.json", "weights.pt", "metrics.json", "train_log.jsonl", STATE_FILE):
        assert (tmp_path / "t" / f).is_file()
    m = read_metrics(tmp_path / "t")
    assert m["command"] == "test" and m["iterations"] == 30 and "evaluation" in m
    assert {x["profile"] for x in m["evaluation"]["per_profile"]} == {"11", "10", "01", "00"}
    loaded = load_auction(tmp_path / "t")
    data = sample_tweaked(tiny.setting, tiny.participation, 3000, seed=9)
    with torch.no_grad():
        a1, p1 = net(data.values)
        a2, p2 = loaded(data.values)
    assert torch.equal(a1, a2) and torch.equal(p1, p2)


def test_resume_continues_exactly(tiny, tmp_path):
    full = train(tiny, tmp_path / "full", progress=False, evaluate_at_end=False)
    train(tiny, tmp_path / "part", progress=False, evaluate_at_end=False, stop_after=20)
    assert not (tmp_path / "part" / "metrics.json").exists() or "evaluation" not in read_metrics(tmp_path / "part")
    resumed = train(tiny, tmp_path / "part", progress=False, evaluate_at_end=False, resume=True)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)
    lines = (tmp_path / "part" / "train_log.jsonl").read_text().splitlines()
    assert len(lines) == 3  # iterations 10, 20 (first call) and 30 (resumed)


def test_resume_refuses_a_different_config(tiny, tmp_path):
    train(tiny, tmp_path / "x", progress=False, evaluate_at_end=False, stop_after=10)
    from zkauction.learn.config import config_from_dict

    raw = dict(tiny.raw)
    raw["train"] = dict(raw["train"], seed=5)
    with pytest.raises(ConfigError, match="different config"):
        train(config_from_dict(raw), tmp_path / "x", progress=False, resume=True)


def _shipped():
    from pathlib import Path

    trained = Path(__file__).resolve().parents[1] / "trained"
    if not trained.is_dir():
        return []
    return sorted(p for p in trained.glob("*") if (p / "config.json").is_file() and (p / "weights.pt").is_file())


@pytest.mark.parametrize("path", _shipped(), ids=lambda p: p.name)
def test_shipped_nets_honour_the_contract(path):
    # Feasibility, individual rationality and absent bidders on random tweaked bids, for every shipped net.
    net = load_auction(path)
    data = sample_tweaked(net.setting, net.participation, 4000, seed=11)
    from zkauction.learn.setting import ParticipationModel

    masked = sample_tweaked(net.setting, ParticipationModel.independent([0.5] * net.setting.n), 4000, seed=12)
    for values in (data.values, masked.values):
        with torch.no_grad():
            alloc, pay = net(values)
        assert torch.all(alloc >= 0) and torch.all(alloc.sum(1) <= 1 + 1e-5)
        assert torch.all(pay >= -1e-6) and torch.all(pay <= (alloc * values).sum(-1) + 1e-5)
        absent = values.abs().sum(-1) == 0
        assert torch.all(alloc[absent] == 0) and torch.all(pay[absent] == 0)
    if path.name in ("1x2_uniform", "2x2_uniform") and (path / "metrics.json").is_file():  # learning core's
        m = read_metrics(path)
        assert m["command"].startswith("zkauction train") and m["train_cpu_seconds"] <= 30 * 60


def test_teacher_warm_start_and_init(tiny, tmp_path):
    from zkauction.learn.config import config_from_dict

    raw = dict(tiny.raw)
    raw["train"] = dict(raw["train"], teacher="myerson", distill_iterations=20, iterations=3)
    train(config_from_dict(raw), tmp_path / "d", progress=False, evaluate_at_end=False)
    log = (tmp_path / "d" / "train_log.jsonl").read_text().splitlines()
    assert "distill_iteration" in log[0] and "iteration" in log[-1]
    raw["train"] = dict(tiny.raw["train"], init=str(tmp_path / "d"), iterations=3)
    train(config_from_dict(raw), tmp_path / "i", progress=False, evaluate_at_end=False)
    raw["net"] = dict(raw["net"], width=8)
    with pytest.raises(ConfigError, match="do not fit"):
        train(config_from_dict(raw), tmp_path / "j", progress=False, evaluate_at_end=False)
    raw["net"], raw["train"] = tiny.raw["net"], dict(tiny.raw["train"], teacher="nope", distill_iterations=2)
    with pytest.raises(ConfigError, match="teacher"):
        train(config_from_dict(raw), tmp_path / "k", progress=False, evaluate_at_end=False)


def test_prior_regret_net_starts_as_its_prior_and_is_self_contained(root, tmp_path):
    import shutil

    from zkauction.learn.checkpoint import save_checkpoint
    from zkauction.learn.config import config_from_dict
    from zkauction.learn.data import sample_profile
    from zkauction.learn.prior import PriorRegretNet
    from zkauction.learn.regret import AttackConfig, evaluation_attack

    prior_dir = tmp_path / "prior"
    shutil.copytree(root / "trained" / "ama_2x2_uniform", prior_dir)
    prior = load_auction(prior_dir)
    net = PriorRegretNet(prior.setting, prior.participation, depth=2, width=16, prior=str(prior_dir), prior_temperature=0.05)
    v = sample_profile(prior.setting, (1, 1), 2000, 0)
    prior.train()
    prior.temperature = 0.05
    with torch.no_grad():
        a, p = net(v)
        a0, p0 = prior(v)
    assert (a - a0).abs().max() < 1e-4 and (p - p0).abs().max() < 1e-4  # the untrained net is the prior
    # ... whose relaxation is truthful: the evaluation attack finds (float-noise) zero regret.
    assert evaluation_attack(net, v[:40], AttackConfig(steps=20, starts=2, grid=11)).max() < 1e-5
    assert not any(q.requires_grad for q in net.prior.parameters())
    # The checkpoint carries the prior: it loads after the prior's folder is gone.
    save_checkpoint(net, tmp_path / "n")
    shutil.rmtree(prior_dir)
    with torch.no_grad():
        assert torch.equal(load_auction(tmp_path / "n")(v)[1], net(v)[1])
    # Configs: a prior is required, must be an AMA of the same setting.
    raw = {"setting": {"n_bidders": 2, "n_items": 2}, "net": {"kind": "regret_prior", "depth": 1, "width": 4},
           "train": {"iterations": 1}}
    with pytest.raises(ConfigError, match="needs prior"):
        train(config_from_dict(raw), tmp_path / "x", progress=False, evaluate_at_end=False)
    raw["net"]["prior"] = str(root / "trained" / "2x2_uniform")
    with pytest.raises(ConfigError, match="smooth relaxation"):
        train(config_from_dict(raw), tmp_path / "x", progress=False, evaluate_at_end=False)
    raw["net"]["prior"] = str(root / "trained" / "ama_1x2_uniform")
    with pytest.raises(ConfigError, match="another setting"):
        train(config_from_dict(raw), tmp_path / "x", progress=False, evaluate_at_end=False)
