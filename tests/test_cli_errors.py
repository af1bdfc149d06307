"""A newcomer's mistakes on the command line: every bad argument or file exits with a code (2 for
bad input) and one line that names the argument or file and what was expected, never a traceback;
Ctrl-C during training leaves a state that ``--resume`` continues without repeating log lines."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zkauction.cli import app

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.toml"
SHIPPED = ROOT / "trained" / "ama_2x2_uniform"
EXAMPLE_PROOF = ROOT / "circuits" / "ama_2x2_uniform" / "example_proof.json"


def _config(tmp: Path, name: str, body: str) -> str:
    path = tmp / f"{name}.toml"
    path.write_text(f'base = "{TINY}"\nname = "{name}"\n' + body)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Bad inputs, made once: {name: path}."""
    tmp = tmp_path_factory.mktemp("bad_inputs")
    f = {"tmp": str(tmp), "missing": str(tmp / "missing"), "readme": str(ROOT / "README.md"),
         "configs": str(ROOT / "configs"), "shipped": str(SHIPPED)}
    f["unknown_key"] = _config(tmp, "unknown_key", "[train]\nitterations = 5\n")
    f["bad_sum"] = str(tmp / "bad_sum.toml")
    Path(f["bad_sum"]).write_text('[setting]\nn_bidders = 2\nn_items = 2\n[participation]\nprofiles = ["11", "10"]\n'
                                  "probabilities = [0.5, 0.4]\n")
    f["huge"] = _config(tmp, "huge", "[setting]\nn_bidders = 1_000_000_000\n")
    f["big_sample"] = str(tmp / "big_sample.toml")  # fixed bidders: one profile, but 10^5 values each
    Path(f["big_sample"]).write_text("[setting]\nn_bidders = 1000\nn_items = 100\n")
    f["bad_kind"] = _config(tmp, "bad_kind", '[net]\nkind = "transformer"\n')
    f["negative"] = _config(tmp, "negative", "[train]\niterations = -5\n")
    f["not_a_table"] = str(tmp / "not_a_table.toml")
    Path(f["not_a_table"]).write_text("setting = 3\n")
    f["binary"] = str(tmp / "binary.toml")
    Path(f["binary"]).write_bytes(bytes(range(256)))
    # trained folders that are not whole
    for name in ("corrupt", "no_weights", "bad_weights", "trained"):
        (tmp / name).mkdir()
        f[name] = str(tmp / name)
    (tmp / "corrupt" / "config.json").write_text("{oops")
    shutil.copy(SHIPPED / "weights.pt", tmp / "corrupt" / "weights.pt")
    shutil.copy(SHIPPED / "config.json", tmp / "no_weights" / "config.json")
    shutil.copy(SHIPPED / "config.json", tmp / "bad_weights" / "config.json")
    (tmp / "bad_weights" / "weights.pt").write_bytes(b"not a torch file")
    for name in ("config.json", "weights.pt", "metrics.json"):  # what `train --out` must not replace
        shutil.copy(SHIPPED / name, tmp / "trained" / name)
    (tmp / "circuit").mkdir()
    (tmp / "circuit" / "manifest.json").write_text("{}")
    f["circuit"] = str(tmp / "circuit")
    f["not_json"] = str(tmp / "not_json.json")
    Path(f["not_json"]).write_text("{not json")
    f["truncated"] = str(tmp / "truncated.json")
    Path(f["truncated"]).write_text(EXAMPLE_PROOF.read_text()[:300])
    return f


# (id, argv with {placeholders} from `files`, exit code, substrings the output must contain[, mark])
CASES = [
    # train
    ("train-no-out", ["train", str(TINY)], 2, ["--out"]),
    ("train-missing-config", ["train", "{missing}.toml", "--out", "{tmp}/o"], 2, ["not found", "missing.toml"]),
    ("train-config-is-folder", ["train", "{configs}", "--out", "{tmp}/o"], 2, ["configs", "is a folder"]),
    ("train-config-not-toml", ["train", "{readme}", "--out", "{tmp}/o"], 2, ["README.md", "not valid TOML"]),
    ("train-config-binary", ["train", "{binary}", "--out", "{tmp}/o"], 2, ["binary.toml", "not valid TOML"]),
    ("train-out-is-file", ["train", str(TINY), "--out", "{readme}"], 2, ["--out", "README.md", "is a file"]),
    ("train-out-holds-trained", ["train", str(TINY), "--out", "{trained}"], 2, ["--out", "--force"]),
    ("train-out-shipped-net", ["train", str(TINY), "--out", "{shipped}"], 2, ["ama_2x2_uniform", "--force"]),
    ("train-resume-without-state", ["train", str(TINY), "--out", "{tmp}/fresh", "--resume"], 2, ["--resume", "train_state.pt"]),
    ("train-resume-and-force", ["train", str(TINY), "--out", "{tmp}/fresh", "--resume", "--force"], 2, ["--force", "--resume"]),
    ("train-bad-device", ["train", str(TINY), "--out", "{tmp}/o", "--device", "gpu7"], 2, ["--device", "gpu7"]),
    ("train-unknown-key", ["train", "{unknown_key}", "--out", "{tmp}/o"], 2, ["unknown_key.toml", "itterations"]),
    ("train-probabilities", ["train", "{bad_sum}", "--out", "{tmp}/o"], 2, ["bad_sum.toml", "sum to"]),
    ("train-absurd-setting", ["train", "{huge}", "--out", "{tmp}/o"], 2, ["huge.toml", "too large"]),
    ("train-unknown-net-kind", ["train", "{bad_kind}", "--out", "{tmp}/o"], 2, ["transformer", "known kinds"]),
    ("train-negative-iterations", ["train", "{negative}", "--out", "{tmp}/o"], 2, ["iterations", "positive"]),
    ("train-setting-not-table", ["train", "{not_a_table}", "--out", "{tmp}/o"], 2, ["not_a_table.toml", "[setting]"]),
    # evaluate
    ("evaluate-missing", ["evaluate", "{missing}"], 2, ["missing", "no such folder"]),
    ("evaluate-a-file", ["evaluate", "{readme}"], 2, ["README.md", "config.json"]),
    ("evaluate-corrupt-config", ["evaluate", "{corrupt}"], 2, ["config.json", "not valid JSON"]),
    ("evaluate-no-weights", ["evaluate", "{no_weights}"], 2, ["no_weights", "weights.pt"]),
    ("evaluate-bad-weights", ["evaluate", "{bad_weights}"], 2, ["weights.pt", "cannot load"]),
    ("evaluate-zero-profiles", ["evaluate", "{shipped}", "--n-revenue", "0"], 2, ["--n-revenue"]),
    ("evaluate-not-a-number", ["evaluate", "{shipped}", "--n-regret", "many"], 2, ["--n-regret"]),
    ("evaluate-bad-device", ["evaluate", "{shipped}", "--device", "tpu"], 2, ["--device", "tpu"]),
    ("evaluate-negative-lr", ["evaluate", "{shipped}", "--lr", "-1"], 2, ["--lr"]),
    ("evaluate-negative-steps", ["evaluate", "{shipped}", "--steps", "-3"], 2, ["--steps"]),
    # baselines
    ("baselines-missing", ["baselines", "{missing}.toml"], 2, ["missing.toml", "not found"]),
    ("baselines-unknown-kind", ["baselines", str(TINY), "--only", "myerson,foo"], 2, ["--only", "foo"]),
    ("baselines-absurd-setting", ["baselines", "{huge}"], 2, ["huge.toml", "too large"]),
    ("baselines-too-many-profiles", ["baselines", "{big_sample}"], 2, ["1,000 bidders", "GiB"]),
    ("baselines-folder-without-config", ["baselines", "{tmp}"], 2, ["config.json"]),
    # compile
    ("compile-no-srs", ["compile", "{shipped}", "--out", "{tmp}/c"], 2, ["--srs", "--dev-srs"]),
    ("compile-missing-net", ["compile", "{missing}", "--out", "{tmp}/c", "--dev-srs"], 2, ["missing", "config.json"]),
    ("compile-out-is-file", ["compile", "{shipped}", "--out", "{readme}", "--dev-srs"], 2, ["--out", "README.md"]),
    ("compile-out-holds-circuit", ["compile", "{shipped}", "--out", "{circuit}", "--dev-srs"], 2, ["--out", "--force"]),
    ("compile-srs-missing", ["compile", "{shipped}", "--out", "{tmp}/c", "--srs", "{missing}.srs"], 2, ["SRS file not found", "missing.srs"]),
    ("compile-lookup-margin", ["compile", "{shipped}", "--out", "{tmp}/c", "--dev-srs", "--lookup-margin", "1"], 2, ["at least 2"]),
    ("compile-input-scale", ["compile", "{shipped}", "--out", "{tmp}/c", "--dev-srs", "--input-scale", "99"], 2, ["--input-scale"]),
    # verify
    ("verify-missing-bundle", ["verify", "{missing}.json"], 2, ["missing.json", "not found"]),
    ("verify-not-json", ["verify", "{not_json}"], 2, ["not_json.json", "JSON"]),
    ("verify-truncated", ["verify", "{truncated}"], 2, ["truncated.json", "JSON"]),
    ("verify-circuit-missing", ["verify", str(EXAMPLE_PROOF), "--circuit", "{missing}"], 2, ["missing", "no such folder"]),
    ("verify-circuit-is-file", ["verify", str(EXAMPLE_PROOF), "--circuit", "{readme}"], 2, ["README.md", "not a folder"]),
    # the app itself
    ("unknown-command", ["trian", str(TINY)], 2, ["trian"]),
    ("unknown-option", ["evaluate", "{shipped}", "--frobnicate"], 2, ["--frobnicate"]),
    ("unknown-global-option", ["--verbose", "evaluate"], 2, ["--verbose"]),
]


@pytest.mark.parametrize("argv, code, expected", [pytest.param(*c[1:4], id=c[0], marks=c[4:]) for c in CASES])
def test_bad_input_is_one_line_and_exit_code(files, argv, code, expected):
    args = [a.format(**files) for a in argv]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    errors = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, r.output  # one line, not a box or a stack
    for text in expected:
        assert text in errors[0], (text, errors[0])


def test_there_are_enough_cases():
    assert len(CASES) >= 40
    assert {c[1][0] for c in CASES} >= {"train", "evaluate", "baselines", "compile", "verify"}


def test_debug_shows_the_traceback(files):
    r = CliRunner().invoke(app, ["--debug", "evaluate", files["missing"]])
    assert r.exit_code != 0 and type(r.exception).__name__ == "CheckpointError"


def _zkauction(*args: str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zkauction", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, **kw)


def test_console_entry_version_and_usage_errors(tmp_path):
    r = _zkauction("--version", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    import zkauction

    assert r.stdout.splitlines()[0] == f"zkauction {zkauction.__version__}"
    assert "ezkl 23.0.5" in r.stdout
    r = _zkauction("frobnicate", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "frobnicate" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = _zkauction("evaluate", str(tmp_path / "nope"), cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()] and "nope" in r.stderr


def _log_iterations(folder: Path) -> list[int]:
    return [json.loads(line)["iteration"] for line in (folder / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_ctrl_c_saves_a_state_that_resume_continues(tmp_path):
    """SIGINT to a training process: exit 130 with one line, a train_state.pt at the step reached;
    `--resume` finishes it and the log has each logged iteration once."""
    cfg = _config(tmp_path, "interrupted", "[train]\niterations = 300\nlog_every = 10\ncheckpoint_every = 1000\n")
    out = tmp_path / "out"
    args = ["-m", "zkauction", "train", cfg, "--out", str(out), "--no-progress", "--no-eval"]
    proc = subprocess.Popen([sys.executable, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    log = out / "train_log.jsonl"
    deadline = time.monotonic() + 90
    while not (log.is_file() and len(log.read_text().splitlines()) >= 2):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert "--resume" in stderr and "train_state.pt" in stderr
    import torch

    stopped = torch.load(out / "train_state.pt", map_location="cpu", weights_only=False)["iteration"]
    assert 20 <= stopped < 300  # saved at the step reached, not at a checkpoint_every boundary
    assert _log_iterations(out) == list(range(10, stopped // 10 * 10 + 1, 10))
    r = subprocess.run([sys.executable, *args, "--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert _log_iterations(out) == list(range(10, 301, 10))
