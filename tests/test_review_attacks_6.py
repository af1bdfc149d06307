"""Attacks found by the fourteenth adversarial review (exact verification of proof bundles and their
binding to the log; the audit draw). Each test plays the cheating auctioneer and fails on the code it
was written against (b9d053c): the attack worked there."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from test_attacks import CIRCUIT
from test_protocol import PARTICIPATION, SETTING

from zkauction.protocol.announcement import misstated_terms
from zkauction.protocol.audit import Auditor
from zkauction.protocol.auctioneer import circuit_outcome_function
from zkauction.protocol.demo import auction_info
from zkauction.protocol.local import LocalRun, play_round
from zkauction.protocol.state import read_state


@pytest.fixture(scope="module")
def circuit():
    from zkauction.zk.circuit import Circuit

    return Circuit.load(CIRCUIT)


# Honest bids (inside the support [0, 1]) on which the shipped 2x2 AMA sells nothing; read as twice
# as high (announced input scale 11 against the circuit's 10), it sells both items for 0.98 in all.
BIDS = [[0.125, 0.5], [0.5, 0.125]]


@pytest.mark.parametrize("vk", ["omitted", "wrong"])
def test_a_misstated_vk_hash_does_not_silence_the_other_misstated_terms(tmp_path, circuit, vk):
    """The second review's attack, reopened. The auctioneer announces the circuit's real manifest
    hash, but states its verifying-key hash wrongly (or leaves it out: the manifest pins the vk
    anyway) and the input scale as 11 instead of 10. ``misstated_terms`` returns [] as soon as the
    vk hash differs ("another circuit: the proof check refuses the proofs"), so the misstated input
    scale is never named; but the proof check (``verify_bundle`` via ``Auditor._check_zk``) compares
    the announced *manifest* only, and the bundle's vk with the verifier's circuit, never with the
    announced vk: the proofs verify. Bidders told only the hashes (``zkauction bidder run`` without
    --circuit checks nothing but the mode) commit Poseidon(round(b * 2^11)), which the circuit reads
    as the bid 2b; every outcome is computed and PROVEN on doubled bids. Here a round that the
    announced auction (the circuit on the bids committed) leaves unsold sells both items for 0.98 in
    all, each winner paying nearly its whole value (inside its own check). Every verifier holding the
    circuit (``zkauction audit``, the monitor) says valid: no penalty. (`zkauction verify --db` and
    the bundle's log proof do compare the bundle's vk with the announced one, so they refuse it.)"""
    honest = circuit_outcome_function(circuit)

    def doubled(bids, salts):  # the outcome the circuit proves on the committed felts
        return honest([[2 * float(x) for x in row] for row in bids], salts)

    auction = dict(auction_info(circuit))
    if vk == "omitted":
        del auction["vk_sha256"]
    else:
        auction["vk_sha256"] = "00" * 32
    run = LocalRun.create(tmp_path / "a.db", doubled, setting=SETTING, participation=PARTICIPATION,
                          input_scale=circuit.input_scale + 1, auction=auction, rounds=1, audits=1, mode="zk", seed=1)
    with run:
        out = play_round(run.auctioneer, run.bidders, 1, BIDS)  # each bidder checks the outcome: it passes
        assert honest(BIDS, ["00" * 32] * 2).revenue == 0 and out.data["participants"] == [1, 1]
        assert sum(out.data["payment"]) > 0.98
        assert run.reveal().rounds == [1]
        bids, salts = run.auctioneer.round_inputs(1)
        from zkauction.zk.prove import prove_round

        bundle = prove_round(circuit, [[2 * x for x in row] for row in bids], salts, round_id=1)
        run.auctioneer.log_proof(1, bundle, circuit)  # it verifies against the logged commitments and outcome
        ann = read_state(run.ledger).announcement
        assert ann.input_scale == circuit.input_scale + 1
        # with the vk hash stated right, the misstated input scale is named...
        assert misstated_terms(dataclasses.replace(ann, auction=auction_info(circuit)), circuit)
        # ...but a wrong or missing vk hash silences it, and the proofs still verify
        report = Auditor(run.ledger, circuit=circuit).audit()
        assert report.status == "invalid", (
            f"audit says {report.status}: {report.reason}; misstated terms seen: {misstated_terms(ann, circuit)}")


def test_a_log_proof_whose_outcome_entry_is_not_an_object_is_named_not_a_crash(tmp_path):
    """Minor. The auctioneer signs a second "outcome" of round 2 whose payload is a JSON list (its
    own entry: the reader names it a breach) and hands out the round's real proof with a log proof
    pointing at that entry, under a checkpoint it signed. ``check_log_proof`` reads the payload with
    ``d.get("commitments")`` outside its error handling: AttributeError. ``zkauction verify BUNDLE``
    (and ``--db``, which runs the same check first) stops with a Python traceback instead of
    "INVALID: log check failed: ..." naming the check, as every other malformed field of a log proof
    is named (twelfth review: an entry of another shape reads as one without the field)."""
    from test_protocol import zk_run

    from zkauction.protocol.bundle_log import check_log_proof
    from zkauction.protocol.state import OUTCOME
    from zkauction.zk.bundle import VerificationError

    run, circuit = zk_run(tmp_path, rounds=2)
    with run:
        run.play()
        run.reveal()
        bundle = run.auctioneer.prove(2, circuit)
        a = run.auctioneer
        e = run.ledger.append(OUTCOME, ["not", "an", "object"], a.key, round=2, checkpoint_key=a.key)
        cp = run.ledger.latest_checkpoint()
        lp = copy.deepcopy(bundle.log)
        lp.update(outcome=e.to_dict(), checkpoint=cp.to_dict(),
                  inclusion={"announcement": run.ledger.inclusion_proof(0, cp.size),
                             "outcome": run.ledger.inclusion_proof(e.seq, cp.size)})
        try:
            check_log_proof(dataclasses.replace(bundle, log=lp))
            raised = None
        except VerificationError as err:
            raised = err
        except Exception as err:  # noqa: BLE001 (the attack: anything but a named check)
            raised = err
        assert isinstance(raised, VerificationError) and raised.check == "log", f"{type(raised).__name__}: {raised}"
