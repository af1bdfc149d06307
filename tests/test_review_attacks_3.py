"""Attacks found by the ninth and tenth adversarial reviews (session 9). The ninth: values that pass
every validator but make a later float conversion or Poseidon hash raise, so that an honest server
stopped for good and every verifier raised instead of giving a verdict (no penalty ever computed).
The tenth (of the void rule): an announced support table of the wrong shape, and an honest bid that
snaps to all zeros voiding the round for the others. Each test fails without its defence."""

from __future__ import annotations

import asyncio

import pytest

from test_protocol import make_run
from test_review_attacks_2 import BOTH, honest_opened_shill_silent
from test_service import circuit, make_service  # noqa: F401  (circuit: the fixture)
from test_service_attacks import post, reached, registered

from zkauction.protocol.audit import Auditor, check_round, valid_opening
from zkauction.protocol.state import DISPUTE, OUTCOME, absent_commitment, read_state, unique_key
from zkauction.protocol.log import Statement
from zkauction.service.remote import Refused
from zkauction.zk import commitments, poseidon

HUGE = 10**400  # a JSON integer (canonical JSON writes it as is) beyond the float range


@pytest.mark.parametrize("bids, salt", [([HUGE, 0.5], None), ([1e308, 0.5], None), ([0.5, 0.5], " " * 64)])
def test_the_server_never_logs_a_dispute_that_is_not_a_valid_opening(tmp_path, circuit, bids, salt):
    """A bidder rejected for no_opening disputed with a bid beyond the float range (or 1e308, whose
    grid index overflows, or a salt of 64 spaces, which bytes.fromhex skips): the honest server's
    next close_round raised, the run stopped, and a restart on the append-only log died again.
    A dispute that is not a valid opening cures nothing: the server refuses it (400)."""
    srv = make_service(tmp_path, circuit, n_rounds=2, mode="reveal")
    try:
        log_id = srv.engine.log_id
        (b0, k0, remote), (b1, k1, _) = registered(tmp_path, srv)
        b0.commit(1, [0.75, 0.25])
        b1.commit(1, [0.5, 0.5])  # commits, never opens
        assert reached(remote, 1, 1)
        s0 = b0.open(1)
        remote.send("/api/rounds/1/opening", {"bidder": 0, "bids": list(s0.opening.bids), "salt": s0.opening.salt,
                                              "signature": s0.signature})
        assert reached(remote, 1, 2, wait=20)  # the open deadline passed: bidder 1 rejected for no_opening
        size = len(srv.engine.ledger)
        payload = {"bidder": 1, "bids": bids, "salt": salt or b1._openings[1].salt}
        with pytest.raises(Refused, match="not an opening of the logged commitment") as err:
            post(remote, Statement.sign(k1, log_id, DISPUTE, payload, round=1))
        assert err.value.status == 400 and len(srv.engine.ledger) == size and srv.engine.error is None
    finally:
        srv.stop()


def test_a_dispute_beyond_the_float_range_on_the_log_leaves_every_check_a_verdict(tmp_path):
    """The cheating auctioneer's use of the same dispute: its shill's dispute logged, then an
    outcome charging bidder 0 more than the support allows. Every check used to raise
    (OverflowError); now the dispute cures nothing and the breaches are named."""
    with make_run(tmp_path, rounds=2, audits=1) as run:
        a, honest, shill = honest_opened_shill_silent(run)
        salt = shill._openings[1].salt
        run.ledger.append(DISPUTE, {"bidder": 1, "bids": [HUGE, 0.5], "salt": salt}, shill.key, round=1,
                          unique=unique_key(DISPUTE, 1, 1))
        st = read_state(run.ledger)
        commitment = st.commitments[1][1]
        for bids in ([HUGE, 0.5], [1e308, 0.5], [float("inf"), 0.5]):
            assert valid_opening(st, 1, commitment, bids, salt).startswith("not an opening of the logged commitment")
        out = {"participants": [1, 0], "commitments": [st.commitments[1][0], absent_commitment(2, 12)],
               "allocation": [[1.0, 1.0], [0.0, 0.0]], "payment": [3.5, 0.0]}
        run.ledger.append(OUTCOME, out, a.key, round=1, unique=unique_key(OUTCOME, 1), checkpoint_key=a.key)
        reasons = [b.reason for b in check_round(read_state(run.ledger), 1)]
        assert any("pays 3.5, outside [0, 2]" in x for x in reasons), reasons
        # the dispute cured nothing: the shill is left out, so the round is void and selling in it a breach
        assert any("bidder 0 must be absent from the outcome (the round is void: bidder 1's commitment" in x
                   for x in reasons), reasons


def round_1_paying(run, payment):
    """Round 1 on the bids BOTH: the auctioneer logs, without the openings, an outcome selling both
    items to bidder 0 for ``payment`` (the auctioneer's breach when it is more than they are worth)."""
    a, first, second = run.auctioneer, *run.bidders
    first.commit(1, BOTH[0])
    second.commit(1, BOTH[1])
    close = a.close_commitments(1)
    out = {"participants": [1, 1], "commitments": close.data["commitments"], "allocation": [[1.0, 1.0], [0.0, 0.0]],
           "payment": payment}
    return run.ledger.append(OUTCOME, out, a.key, round=1, unique=unique_key(OUTCOME, 1), checkpoint_key=a.key)


@pytest.mark.parametrize("payment", [[HUGE, 0.0], [-HUGE, 0.0]])
def test_an_auctioneers_entry_with_a_number_beyond_the_float_range_is_a_breach_not_a_crash(tmp_path, payment):
    """An outcome paying 10**400: math.isfinite raised OverflowError inside the reader, so read_state
    itself (every verifier, the monitor, both clients, the server's own engine) raised."""
    with make_run(tmp_path, rounds=2, audits=1) as run:
        round_1_paying(run, payment)
        st = read_state(run.ledger)
        assert any("malformed outcome payload" in b.reason for b in st.breaches), st.breaches
        assert Auditor(run.ledger, outcome=run.outcome).audit().status == "invalid"


def test_a_felt_is_64_hex_digits_and_nothing_else():
    """bytes.fromhex skips whitespace: 64 spaces passed check_felt as the felt 0, then the Poseidon
    hash raised (native) or panicked (ezkl), in every verifier of published openings."""
    for bad in (" " * 64, "0" * 62 + " 1", "\t" * 64, "0" * 63 + "\n", "g" * 64):
        with pytest.raises(commitments.CommitmentError, match="not a hex string"):
            commitments.check_felt(bad, "salt")
    assert commitments.check_felt("0A" * 32) == "0a" * 32


def test_ezkls_poseidon_panicking_is_an_error_the_callers_catch(monkeypatch):
    """With ZKAUCTION_POSEIDON=ezkl (installs without a C compiler) ezkl panics on a bad felt, and
    pyo3's PanicException is a BaseException: it went through every except clause."""
    monkeypatch.setattr(poseidon, "BACKEND", "ezkl")
    with pytest.raises(ValueError, match="ezkl's Poseidon refused the message"):
        poseidon.hash_many([[" " * 64]])


def test_the_server_records_a_panic_so_its_clients_stop_waiting(tmp_path, circuit):
    """A native library's panic (a BaseException) killed the engine task without recording it:
    /api/status kept saying "closing" with no error, and clients waited for ever."""

    class Panic(BaseException):
        pass

    srv = make_service(tmp_path, circuit, n_rounds=2, mode="reveal")
    srv.stop()
    engine = srv.engine

    async def panics():
        raise Panic("explicit panic")

    engine._run = panics
    with pytest.raises(Panic):
        asyncio.run(engine.run())
    assert engine.error == "Panic: explicit panic"


@pytest.mark.parametrize("support, why", [
    ([[[0.0, 1.0], [0.0, 1.0]]], "support must be 2 rows of 2"),  # the shill's row left out
    ([[[0.0, 1.0]], [[0.0, 1.0]]], "support must be 2 rows of 2"),
    ([[[0.0, 1.0], [0.5, 0.25]], [[0.0, 1.0], [0.0, 1.0]]], "bidder 0, item 1"),
    ([[[0.0, 1.0], [0.0, 1.0]], [[-1.0, 1.0], [0.0, 1.0]]], "bidder 1, item 0"),
    ([[[0.0, 1.0], [0.0, HUGE]], [[0.0, 1.0], [0.0, 1.0]]], "bidder 0, item 1"),
    ([[[0.0, 1.0], [0.0, True]], [[0.0, 1.0], [0.0, 1.0]]], "bidder 0, item 1"),
])
def test_an_announced_support_table_of_the_wrong_shape_is_refused(support, why):
    """The tenth review: a support table one row short (the shill's) passed the reader and the
    bidders' penalty check (which read the rows present), then every verifier's public checks raised
    IndexError while the honest bidder was overcharged inside its own-bids bound."""
    from zkauction.protocol.announcement import Announcement
    from zkauction.protocol.state import ProtocolError

    d = {"format": "zkauction-protocol/3", "rounds": 3, "audits": 1, "penalty": 99.0, "mode": "reveal", "n": 2, "m": 2,
         "input_scale": 10, "support": support, "auction": {}, "auctioneer": "a" * 64, "bidders": ["b" * 64, "c" * 64],
         "third_party": None, "deadlines": {}}
    with pytest.raises(ProtocolError, match=why):
        Announcement.from_dict(d)
    Announcement.from_dict(dict(d, support=[[[0.0, 1.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]]))


def test_bids_that_snap_to_all_zeros_are_no_bid_not_a_void_round(tmp_path):
    """The tenth review: an honest bid of [0.0001, 0] snaps to all zeros on the grid 2^-12, was
    committed, rejected (all-zero bids) and voided the round for the other bidder. A bidder sits such
    a round out (as the client passes) and refuses to commit it."""
    from zkauction.protocol.state import ProtocolError

    with make_run(tmp_path, rounds=2, audits=1) as run:
        tiny = [[0.0001, 0.0], BOTH[1]]
        with pytest.raises(ProtocolError, match="are all zero on the input grid .* no bid, which would void the round"):
            run.bidders[0].commit(1, tiny[0])
        run.bids_of_round = lambda r: tiny
        run.play()
        st = read_state(run.ledger)
        assert all(st.outcomes[r].data["participants"] == [0, 1] for r in (1, 2)) and st.rejections == {}
        assert sum(st.outcomes[1].data["payment"]) > 0


def test_a_bid_at_a_support_bound_off_the_grid_is_committed_inside_the_support(tmp_path):
    """The eleventh review: support [0, 0.3] at input scale 12; an honest bid of 0.3 snapped to
    0.300049, outside the support, was rejected with the bidder's own opening as evidence and voided
    the round for the other bidder. The bidder now commits the nearest grid point inside (0.299805),
    finds that commitment again after a restart; a bid outside the support is committed as snapped
    (the auctioneer rejects it, as before)."""
    import torch

    from zkauction.learn.nets import RegretNet
    from zkauction.learn.setting import AuctionSetting, ParticipationModel
    from zkauction.protocol.auctioneer import net_outcome_function
    from zkauction.protocol.local import LocalRun

    setting, participation = AuctionSetting(2, 2, support=(0.0, 0.3)), ParticipationModel.independent([1.0, 1.0])
    torch.manual_seed(0)
    fn = net_outcome_function(RegretNet(setting, participation, depth=2, width=16).eval())
    bids = [[0.3, 0.1], [0.25, 0.2]]
    with LocalRun.create(tmp_path / "a.db", fn, setting=setting, participation=participation, input_scale=12,
                         auction={"name": "x"}, rounds=2, audits=1, mode="reveal", seed=1) as run:
        assert run.bidders[0].committed_bids(bids[0]) == (1228 / 4096, 410 / 4096)
        assert run.bidders[0].committed_bids([0.35, 0.1]) == (1434 / 4096, 410 / 4096)
        run.bids_of_round = lambda r: bids
        run.play()
        st = read_state(run.ledger)
        assert st.rejections == {} and all(st.outcomes[r].data["participants"] == [1, 1] for r in (1, 2))
        assert run.audit().status == "valid"
    with LocalRun(tmp_path / "a.db", fn) as again:  # a restarted bidder finds its commitment of those bids
        assert again.bidders[0].resume_round(1, bids[0]) is True
