import json

from typer.testing import CliRunner

from zkauction.cli import app

runner = CliRunner()


def test_train_evaluate_baselines_cli(root, tmp_path):
    out = tmp_path / "tiny"
    r = runner.invoke(app, ["train", str(root / "configs" / "tiny.toml"), "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "revenue" in r.output
    r = runner.invoke(app, ["evaluate", str(out), "--json", "--n-revenue", "2000", "--n-regret", "10", "--steps", "5", "--grid", "5"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert {"revenue", "regret", "score", "per_profile", "attack"} <= set(d)
    assert d["attack"]["steps"] == 5
    assert [p["profile"] for p in d["per_profile"]] == ["11", "10", "01", "00"]
    r = runner.invoke(app, ["baselines", str(root / "configs" / "1x2_uniform.toml"), "--n-revenue", "20000", "--n-regret", "10", "--steps", "5"])
    assert r.exit_code == 0, r.output
    assert "menu" in r.output and "0.5492" in r.output


def test_cli_user_errors_are_one_line(tmp_path):
    r = runner.invoke(app, ["evaluate", str(tmp_path / "missing")])
    assert r.exit_code == 2 and r.output.strip().startswith("error:") and "Traceback" not in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[setting]\nn_bidders = 2\nn_items = 2\n[participation]\nprofiles = ["11", "10"]\nprobabilities = [0.5, 0.4]\n')
    r = runner.invoke(app, ["train", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "sum to" in r.output and len(r.output.strip().splitlines()) == 1
    r = runner.invoke(app, ["train", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "not found" in r.output


def test_device_option_names_what_is_wrong(root, tmp_path):
    import torch

    cfg = str(root / "configs" / "tiny.toml")
    r = runner.invoke(app, ["train", cfg, "--out", str(tmp_path / "o"), "--device", "gpu7"])
    assert r.exit_code == 2 and "--device" in r.output and "gpu7" in r.output and "Traceback" not in r.output
    if not torch.cuda.is_available():
        r = runner.invoke(app, ["train", cfg, "--out", str(tmp_path / "o"), "--device", "cuda"])
        assert r.exit_code == 2 and "no CUDA GPU" in r.output
        r = runner.invoke(app, ["evaluate", str(root / "trained" / "1x2_uniform"), "--device", "cuda"])
        assert r.exit_code == 2 and "no CUDA GPU" in r.output
    assert not (tmp_path / "o").exists()  # nothing written for a bad device
