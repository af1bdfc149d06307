import numpy as np
import onnx
import pytest
import torch

import zkauction.learn.nets as nets
from zkauction.zk.compile import circuit_mask_logit
from zkauction.zk.export import OUTPUT_NAMES, export_onnx, input_names, onnx_forward
from zkauction.learn.nets import RegretNet
from zkauction.learn.setting import AuctionSetting, ParticipationModel


def assert_onnx_matches(path, net, bids: np.ndarray, atol: float) -> tuple[np.ndarray, np.ndarray]:
    """The exported model's allocation and payment equal the PyTorch net's on ``bids`` [n, m];
    returns the exported model's (allocation, payment)."""
    alloc, pay = onnx_forward(path, bids)
    with torch.no_grad():
        ref_a, ref_p = net(torch.as_tensor(bids)[None])
    np.testing.assert_allclose(alloc, ref_a[0].numpy(), atol=atol)
    np.testing.assert_allclose(pay, ref_p[0].numpy(), atol=atol)
    return alloc, pay


def _ort_with_salts(path, bids, salts):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {
        f"bidder_{i}": np.array([list(bids[i]) + [salts[i]]], dtype=np.float32) for i in range(len(bids))
    }
    return sess.run(list(OUTPUT_NAMES), feeds)


@pytest.mark.parametrize("n,m", [(1, 2), (2, 2), (3, 4)])
def test_regret_net_export_honours_the_contract(tmp_path, n, m):
    torch.manual_seed(0)
    net = RegretNet(AuctionSetting(n, m), ParticipationModel.independent([0.7] * n), depth=2, width=8)
    path = export_onnx(net, tmp_path / "model.onnx")
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == input_names(n)
    for i in model.graph.input:
        assert [d.dim_value for d in i.type.tensor_type.shape.dim] == [1, m + 1]
    outs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    assert outs == {"allocation": [1, n, m], "payment": [1, n]}
    bids = net.setting.sample_values(1, torch.Generator().manual_seed(3))[0]
    bids[0] = 0.0  # an absent bidder
    alloc, pay = assert_onnx_matches(path, net, bids.numpy(), atol=1e-5)
    assert np.all(alloc[0] == 0) and pay[0] == 0


def test_salt_slot_never_reaches_the_arithmetic(tmp_path):
    net = RegretNet(AuctionSetting(2, 2), depth=1, width=8)
    path = export_onnx(net, tmp_path / "model.onnx")
    bids = [[0.3, 0.7], [0.9, 0.1]]
    a = _ort_with_salts(path, bids, [0.0, 0.0])
    b = _ort_with_salts(path, bids, [1e30, -123.0])
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_circuit_mask_logit_is_restored_and_changes_only_absent_rows(tmp_path):
    torch.manual_seed(1)
    net = RegretNet(AuctionSetting(2, 2), ParticipationModel.independent([0.5, 0.5]), depth=1, width=8)
    before = nets.MASK_LOGIT
    with circuit_mask_logit(net, 12.0):
        assert net.mask_logit == 12.0
        path = export_onnx(net, tmp_path / "model.onnx")
    assert nets.MASK_LOGIT == before and net.mask_logit == before
    # With one bidder absent the small offset still drives the absent logit's exp to ~0.
    bids = np.array([[0.0, 0.0], [0.6, 0.4]], dtype=np.float32)
    assert_onnx_matches(path, net, bids, atol=1e-4)


def test_affine_maximizer_exports(tmp_path):
    ama = pytest.importorskip("zkauction.learn.ama")
    from zkauction.learn.nets import net_class

    cls = net_class("ama")
    net = cls(AuctionSetting(2, 2), ParticipationModel.independent([0.7, 0.9]))
    net.eval()
    path = export_onnx(net, tmp_path / "ama.onnx")
    bids = np.array([[0.2, 0.9], [0.8, 0.3]], dtype=np.float32)
    assert_onnx_matches(path, net, bids, atol=1e-5)
    assert ama is not None


def test_cli_compile_user_errors(tmp_path):
    from typer.testing import CliRunner

    from zkauction.learn.checkpoint import save_checkpoint
    from zkauction.cli import app

    runner = CliRunner()
    both = runner.invoke(app, ["compile", str(tmp_path), "--out", str(tmp_path / "c"), "--dev-srs", "--srs", "x.srs"])
    assert both.exit_code == 2 and "exactly one of --srs" in both.output
    neither = runner.invoke(app, ["compile", str(tmp_path), "--out", str(tmp_path / "c")])
    assert neither.exit_code == 2 and "exactly one of --srs" in neither.output
    missing = runner.invoke(app, ["compile", str(tmp_path / "nope"), "--out", str(tmp_path / "c"), "--dev-srs"])
    assert missing.exit_code == 2 and "config.json" in missing.output and "Traceback" not in missing.output
    save_checkpoint(RegretNet(AuctionSetting(2, 2), depth=1, width=4), tmp_path / "t")
    no_srs = runner.invoke(app, ["compile", str(tmp_path / "t"), "--out", str(tmp_path / "c"), "--srs", str(tmp_path / "none.srs")])
    assert no_srs.exit_code == 2 and "SRS file not found" in no_srs.output
    margin = runner.invoke(app, ["compile", str(tmp_path / "t"), "--out", str(tmp_path / "c"), "--dev-srs", "--lookup-margin", "1"])
    assert margin.exit_code == 2 and "at least 2" in margin.output


def test_cli_verify_user_errors(tmp_path):
    from typer.testing import CliRunner

    from zkauction.cli import app

    runner = CliRunner()
    (tmp_path / "b.json").write_text("{not json")
    r = runner.invoke(app, ["verify", str(tmp_path / "b.json"), "--circuit", str(tmp_path)])
    assert r.exit_code == 2 and "not valid JSON" in r.output
    (tmp_path / "b.json").write_text('{"format": "zkauction-proof/1"}')
    r = runner.invoke(app, ["verify", str(tmp_path / "b.json"), "--circuit", str(tmp_path)])
    assert r.exit_code == 2 and "missing field" in r.output
