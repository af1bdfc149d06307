"""Seventeenth review (the dispute deadline, the client's resends, the writer's round cache and the
sixteenth review's bad-input fixes, a870a70..0ac40f9): what still went wrong. Every test here
failed on the reviewed commit (0ac40f9)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zkauction.protocol.log import Ledger, LogChangedError, LogLockedError, SigningKey, announcing
from zkauction.protocol.state import OUTCOME, ProtocolError


# --------------------------------------------------------------------------------------------------
# 1. The cleanup of a failed announcement removed files it did not create (log_removed_unless_announced,
#    replaced by log.announcing)


def test_a_failed_announcement_leaves_another_writers_new_log_alone(tmp_path):
    """Two `serve --db new.db` (or `run --db new.db`) started together: both saw no file, so both
    decided the log was theirs to remove if their announcement failed (``created`` was decided
    before the writer's lock was taken). The one that lost the lock failed in Ledger.open with
    LogLockedError, and on its way out deleted new.db, its WAL, its shm and its .lock file: the
    winner went on writing its whole auction into unlinked files, and with the .lock gone a third
    writer could take a fresh lock on the same path (two writers). Now the cleanup belongs to the
    writer: ``announcing`` takes the lock first (the loser touches nothing), removes only a log that
    held nothing when it opened it, while it holds the lock, and never a lock file."""
    db = tmp_path / "new.db"
    key = SigningKey.generate()
    winner = Ledger.open(db)  # the other process takes the lock and announces
    winner.append("announcement", {"auction": "the winner's"}, key)
    try:
        with pytest.raises(LogLockedError):
            with announcing(db):  # the loser's own open: the lock is held
                pass
        assert db.exists(), "the other writer's live log was deleted"
        assert (tmp_path / "new.db.lock").exists(), "the other writer's lock file was deleted"
    finally:
        winner.close()
    with Ledger.open(db, writer=False) as reader:
        assert len(reader) == 1


def test_a_failed_announcement_does_not_remove_a_symlink_it_did_not_create(tmp_path):
    """``--db link.db`` where link.db is the operator's symlink to a log not created yet (e.g. on a
    data volume): ``path.exists()`` is False for a dangling link, so a failed announcement unlinks
    the operator's symlink, while SQLite created (and the cleanup leaves behind) the real file and
    its lock next to the target: the log is not removed, the link is. Fix: resolve the path (as the
    writer's lock does, lock_path(path.resolve())) and remove only what this process created."""
    (tmp_path / "link.db").symlink_to(tmp_path / "real.db")
    with pytest.raises(RuntimeError):
        with announcing(tmp_path / "link.db"):
            raise RuntimeError("the announcement is refused")
    assert (tmp_path / "link.db").is_symlink(), "the operator's symlink was removed"
    assert not (tmp_path / "real.db").exists(), "the log the failed announcement created is left behind"


# --------------------------------------------------------------------------------------------------
# 2. RemoteLog's new URL check lets an out-of-range port through (and it wraps to another port)


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://127.0.0.1:65536", "http://127.0.0.1:-1"])
def test_remote_log_refuses_a_port_out_of_range(url):
    """RemoteLog now refuses a malformed URL ("a malformed port raises here"), but httpx parses any
    integer port: http://127.0.0.1:99999 is accepted and the connection goes to port 99999 - 65536
    = 34463 (a different server, if one listens there), -1 fails later as a name lookup error
    retried for two minutes. A port outside 1..65535 must be refused up front as the bad input it is."""
    from zkauction.service.remote import RemoteLog

    with pytest.raises(ProtocolError, match="not a server URL"):
        RemoteLog(url)


# --------------------------------------------------------------------------------------------------
# 3. [train] values still reach training unchecked


def test_an_infinite_phase_length_is_a_config_error():
    """``[[train.phases]] iterations = inf`` (TOML has inf): the new range check in schedule()
    (``0 < lr < inf``...) is never reached: int(inf) raises OverflowError, which from_dict does not
    catch (only TypeError and ValueError), so `zkauction train` ends in a traceback instead of
    exit 2 naming [train] phases."""
    from zkauction.learn.config import ConfigError
    from zkauction.learn.train_config import TrainConfig

    with pytest.raises(ConfigError, match="phase"):
        TrainConfig.from_dict({"phases": [{"iterations": float("inf")}]}, "c.toml")


@pytest.mark.parametrize("attack", [{"lr": "fast"}, {"steps": -3}, {"starts": 1.5}])
def test_evaluation_attack_values_are_checked_before_training(attack):
    """_check_train_values checks [train.evaluation]'s n_revenue, n_regret and seed "before anything
    is trained or written", but of [train.evaluation.attack] only the key names: ``lr = "fast"``
    trains the whole net (config.json, weights.pt, train_state.pt written) and only then fails in
    the evaluation with a TypeError traceback. Fix: build AttackConfig(**attack) and check its
    values (non-negative integer counts, a positive finite lr) in _check_train_values."""
    from zkauction.learn.config import ConfigError
    from zkauction.learn.train_config import TrainConfig

    with pytest.raises(ConfigError, match="attack"):
        TrainConfig.from_dict({"evaluation": {"attack": attack}}, "c.toml")


# --------------------------------------------------------------------------------------------------
# 4. close_round's retry forgets give_up


def test_close_round_keeps_give_up_when_the_log_changed(tmp_path):
    """Auctioneer.close_round(r, give_up=True) retries itself on LogChangedError (an entry came in
    between its read and its append) as ``self.close_round(round)``: the retry drops give_up, so a
    round whose dispute deadline has passed raises "the round waits for them" instead of closing
    void. The engine's loop hides it (it tries again a second later), a direct caller does not.
    Fix: ``return self.close_round(round, give_up=give_up)``."""
    from test_protocol import make_run

    run = make_run(tmp_path, rounds=2, audits=1, name="g.db")
    try:
        for b in run.bidders:
            b.commit(1, [0.5, 0.5])
        run.auctioneer.close_commitments(1)
        run.auctioneer.receive_opening(1, 1, run.bidders[1].open(1))
        assert run.auctioneer.reject_missing(1) == [0]  # bidder 0 falls silent past the deadline
        real = run.ledger.append_many
        calls = []

        def once_changed(items, **kw):
            if any(i[0] == OUTCOME for i in items) and not calls:
                calls.append(1)
                raise LogChangedError("an entry came in meanwhile")
            return real(items, **kw)

        run.ledger.append_many = once_changed
        out = run.auctioneer.close_round(1, give_up=True)
        assert out.data["participants"] == [0, 0]
    finally:
        run.close()
