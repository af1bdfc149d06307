"""Proving at scale (zkauction.zk.pool): a pool of local processes or Ray tasks proves the audited
rounds; the auctioneer checks every bundle before it logs it. Real ezkl proving of the shipped
logrows-8 circuit (about 1.5 s a proof): marked slow (still runs in CI)."""

import dataclasses
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zkauction.cli import app
from zkauction.protocol.auctioneer import circuit_outcome_function
from zkauction.protocol.local import LocalRun
from zkauction.protocol.state import PROOF, ProtocolError, read_state
from zkauction.zk import commitments
from zkauction.zk.bundle import proof_instances, verify_bundle
from zkauction.zk.circuit import Circuit, CircuitError, Outcome
from zkauction.zk.pool import ProvingError, ProvingPool, _run_job
from zkauction.zk.prove import prove_round
from zkauction.zk.witness import evaluate_round

from test_protocol import PARTICIPATION, SETTING, zk_run

CIRCUIT = Path(__file__).resolve().parents[1] / "circuits" / "ama_2x2_uniform"


@pytest.fixture(scope="module")
def circuit():
    c = Circuit.load(CIRCUIT)
    c.ensure_proving_key()
    return c


def job(r, bids):
    return (r, bids, [commitments.int_to_felt(1000 * r + i + 1) for i in range(len(bids))])


JOBS = [job(1, [[0.25, 0.5], [0.75, 0.125]]), job(2, [[0.0, 0.0], [0.5, 0.875]])]


@pytest.mark.slow
def test_a_local_pool_proves_what_one_process_proves(circuit):
    done = []
    with ProvingPool(CIRCUIT, workers=2) as pool:
        bundles = pool.prove_many(JOBS, on_done=lambda r, s: done.append((r, s)))
    assert sorted(r for r, _ in done) == [1, 2] and all(s > 0 for _, s in done)
    assert [b.round_id for b in bundles] == [1, 2]  # job order, whatever order they finished in
    for (r, bids, salts), b in zip(JOBS, bundles):
        coms, outcome = evaluate_round(circuit, bids, salts)
        res = verify_bundle(b, circuit, expected_commitments=coms, expected_outcome=outcome)
        assert res.round_id == r and b.outcome == outcome and list(b.commitments) == coms
    # the same public outputs as proving in this process (workers=1: no pool at all)
    (here,) = ProvingPool(circuit, workers=1).prove_many(JOBS[:1])
    assert proof_instances(here.proof, circuit.n) == proof_instances(bundles[0].proof, circuit.n)
    assert dataclasses.replace(here, proof={}) == dataclasses.replace(bundles[0], proof={})


@pytest.mark.slow
def test_b_ray_local_mode_proves_a_job(circuit):
    pytest.importorskip("ray")
    with ProvingPool(circuit, ray_address="local", workers=1) as pool:
        (b,) = pool.prove_many(JOBS[1:])
        import ray

        assert ray.is_initialized()
    assert not ray.is_initialized()  # the pool stops the Ray instance it started
    coms, outcome = evaluate_round(circuit, JOBS[1][1], JOBS[1][2])
    assert verify_bundle(b, circuit, expected_commitments=coms, expected_outcome=outcome).round_id == 2


def test_ray_missing_says_how_to_install(circuit, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(CircuitError, match=r"pip install ray"):
        ProvingPool(circuit, ray_address="auto").prove_many(JOBS[:1])


@pytest.mark.slow
def test_c_a_bundle_that_does_not_verify_is_not_logged(tmp_path):
    run, circuit = zk_run(tmp_path, rounds=2)
    with run:
        run.play()
        run.reveal()
        bids, salts = run.auctioneer.round_inputs(2)
        bundle = prove_round(circuit, bids, salts, round_id=2)
        size = len(run.ledger)
        lie = Outcome(bundle.outcome.allocation, (bundle.outcome.payment[0] + 0.5,) + bundle.outcome.payment[1:])
        with pytest.raises(ProtocolError, match=r"round 2: the proof does not verify \(outcome check failed"):
            run.auctioneer.log_proof(2, dataclasses.replace(bundle, outcome=lie), circuit)
        forged = dataclasses.replace(bundle, commitments=(bundle.commitments[1], bundle.commitments[0]))
        with pytest.raises(ProtocolError, match=r"round 2: the proof does not verify \(commitments check failed"):
            run.auctioneer.log_proof(2, forged, circuit)
        # a valid proof of another round is not this round's
        with pytest.raises(ProtocolError, match=r"round 1: the proof does not verify \(commitments check failed"):
            run.auctioneer.log_proof(1, dataclasses.replace(bundle, round_id=1), circuit)
        with pytest.raises(ProtocolError, match="round 1: the bundle is for round 2: not logged"):
            run.auctioneer.log_proof(1, bundle, circuit)
        assert len(run.ledger) == size and not run.ledger.entries(kind=PROOF)
        logged = run.auctioneer.log_proof(2, bundle, circuit)
        assert logged.log is not None and len(run.ledger.entries(kind=PROOF, round=2)) == 1


def test_d_a_bad_job_names_its_round(circuit):
    bad = job(7, [[0.25, 0.5], [2.0, 0.125]])  # outside the support [0, 1]
    with pytest.raises(ProvingError, match=r"^round 7: proving failed: bid of bidder 1 for item 0 is 2"):
        ProvingPool(circuit, workers=2).prove_many([JOBS[0], bad])  # checked before any worker starts
    with pytest.raises(ProvingError, match=r"^round 7: proving failed: expected bids of 2 bidders, got 1"):
        _run_job(str(CIRCUIT), None, (7, [[0.25, 0.5]], JOBS[0][2]))  # what a worker reports
    with pytest.raises(ProvingError, match=r"^round 3: proving failed: .*salt"):
        ProvingPool(circuit).prove_many([(3, JOBS[0][1], ["not a salt", "1"])])
    with pytest.raises(ValueError, match="two jobs name the same round"):
        ProvingPool(circuit).prove_many([JOBS[0], JOBS[0]])
    for w in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers must be a positive integer"):
            ProvingPool(circuit, workers=w)
    assert ProvingPool(circuit).prove_many([]) == []


@pytest.mark.slow
def test_e_a_zk_audit_proven_by_two_workers_is_valid(tmp_path, circuit):
    db = tmp_path / "p.db"
    run = LocalRun.create(db, circuit_outcome_function(circuit), setting=SETTING, participation=PARTICIPATION,
                          input_scale=circuit.input_scale,
                          auction={"name": "ama", "manifest_sha256": circuit.manifest_sha256(),
                                   "vk_sha256": circuit.vk_sha256(), "output_scale": min(circuit.output_scales.values())},
                          rounds=2, audits=2, mode="zk", seed=2, circuit=circuit)
    with run:
        run.play()
        draw = run.reveal()
        assert draw.rounds == [1, 2]
        answered = []
        run.answer_audit(draw.rounds, workers=2, on_round=lambda r, s: answered.append(r))
        assert answered == [1, 2]
        st = read_state(run.ledger)
        assert sorted(st.proofs) == [1, 2]
        report = run.verdict()
        assert report.valid and report.rounds == [1, 2], report.to_dict()
        run.answer_audit(draw.rounds, workers=2)  # answered already: nothing is proven or logged twice
        assert len(run.ledger.entries(kind=PROOF)) == 2


def test_cli_workers_must_be_positive(tmp_path):
    for cmd in (["audit", "--db", str(tmp_path / "x.db")], ["demo", "--out", str(tmp_path / "d")]):
        for bad in ("0", "-2"):
            res = CliRunner().invoke(app, cmd + ["--workers", bad])
            assert res.exit_code == 2 and "--workers" in res.output, res.output
    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--network", "--workers", "2"])
    assert res.exit_code == 2 and "not with --network" in res.output, res.output
