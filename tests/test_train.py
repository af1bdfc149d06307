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


def test_resume_without_a_saved_state_is_an_error(tiny, tmp_path):
    from zkauction.learn.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="no train_state.pt to resume from"):
        train(tiny, tmp_path / "never", progress=False, resume=True)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(CheckpointError, match="not a folder"):
        train(tiny, tmp_path / "file", progress=False)
    assert not (tmp_path / "never").exists()


def test_resume_drops_log_lines_written_after_the_saved_state(tiny, tmp_path):
    """A run killed between two checkpoints has logged iterations its state does not hold: the
    resumed run logs them again, once."""
    import json

    out = tmp_path / "k"
    train(tiny, out, progress=False, evaluate_at_end=False, stop_after=20)
    with open(out / "train_log.jsonl", "a") as log:  # what the killed process logged after iteration 20
        log.write(json.dumps({"iteration": 30, "revenue": 9.9}) + "\n" + '{"iteration": 4')
    train(tiny, out, progress=False, evaluate_at_end=False, resume=True)
    lines = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [x["iteration"] for x in lines] == [10, 20, 30] and lines[-1]["revenue"] != 9.9


def _interrupt_when_logged(log, lines: int = 1):
    """SIGINT to this process once ``log`` has ``lines`` lines (from a helper thread, as Ctrl-C)."""
    import os
    import signal
    import threading
    import time

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if log.is_file() and len(log.read_text().splitlines()) >= lines:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_ctrl_c_saves_the_state_and_the_resumed_run_is_the_uninterrupted_one(tiny, tmp_path):
    import json

    from zkauction.learn.checkpoint import TrainingInterrupted
    from zkauction.learn.config import config_from_dict

    raw = dict(tiny.raw, train=dict(tiny.raw["train"], iterations=150, checkpoint_every=1000))
    config = config_from_dict(raw)
    whole = train(config, tmp_path / "whole", progress=False, evaluate_at_end=False)
    out = tmp_path / "split"
    watcher = _interrupt_when_logged(out / "train_log.jsonl")
    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(config, out, progress=False, evaluate_at_end=False)
    watcher.join()
    stopped = torch.load(out / STATE_FILE, map_location="cpu", weights_only=False)["iteration"]
    assert 10 <= stopped < 150
    split = train(config, out, progress=False, evaluate_at_end=False, resume=True)
    for name, tensor in whole.state_dict().items():
        assert torch.allclose(tensor, split.state_dict()[name], atol=1e-6), name
    logged = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [x["iteration"] for x in logged] == list(range(10, 151, 10))
    reference = [json.loads(x) for x in (tmp_path / "whole" / "train_log.jsonl").read_text().splitlines()]
    assert [x["revenue"] for x in logged] == pytest.approx([x["revenue"] for x in reference], abs=1e-6)


def test_a_deferred_interrupt_waits_for_the_step_and_a_second_one_stops_at_once():
    import signal

    from zkauction.learn.checkpoint import DeferredInterrupt

    before = signal.getsignal(signal.SIGINT)
    with DeferredInterrupt() as interrupt:
        signal.raise_signal(signal.SIGINT)
        assert interrupt.requested
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
