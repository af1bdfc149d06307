"""A whole run in one process (simulated truthful bidders): what `zkauction run`, `audit`, `prove`
and `demo` drive."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from zkauction.protocol.audit import (
    Auditor,
    AuditReport,
    AuditSelection,
    TrustedThirdParty,
)
from zkauction.protocol.log import Ledger, SigningKey
from zkauction.protocol.roles import Auctioneer, Bidder, OpeningStore
from zkauction.protocol.state import (
    MODES,
    OUTCOME,
    OutcomeFunction,
    ProtocolError,
    read_state,
)
from zkauction.zk.commitments import CommitmentError

# --------------------------------------------------------------------------------------------------
# Driving a run (simulated bidders)


def run_rounds(
    auctioneer: Auctioneer,
    bidders: Sequence[Bidder],
    bids_of_round: Callable[[int], Sequence[Sequence[float]]],
    rounds: Iterable[int] | None = None,
    *,
    on_round: Callable[[int], None] | None = None,
) -> int:
    """Play rounds (default: every round not yet logged, in order; resumes after a crash).

    ``bids_of_round(r)`` gives the [n][m] bids of round r; an all-zero row is an absent bidder.
    Returns the number of rounds played now.
    """
    ann = auctioneer.announcement()
    if rounds is None:
        st = read_state(auctioneer.ledger)
        todo = [r for r in range(st.rounds_done + 1, ann.rounds + 1) if r not in st.outcomes]
    else:  # cheap per-round queries, so playing one round at a time stays O(1) per round
        todo = [r for r in rounds if not any(e.signer == ann.auctioneer for e in auctioneer.ledger.entries(kind=OUTCOME, round=r))]
    played = 0
    for r in todo:
        profile = bids_of_round(r)
        for b in bidders:
            row = [float(x) for x in profile[b.index]]
            if any(x != 0 for x in row):
                opening = b.bid(r, row, ann.input_scale)
                try:
                    auctioneer.receive_opening(r, b.index, opening)
                except CommitmentError:
                    pass  # logged as opening_rejected; the bidder is absent from this round
        auctioneer.close_round(r)
        played += 1
        if on_round is not None:
            on_round(r)
    return played


# --------------------------------------------------------------------------------------------------
# A whole run in one process: what `zkauction run`, `audit`, `prove` and `demo` drive.

RUN_FILE = "run.json"
OPENINGS_FILE = "openings.db"


def private_dir(db: str | Path) -> Path:
    """Where a local run keeps every party's secrets: ``<db>.private/`` (git-ignored). In a real
    deployment each party holds its own key; here all parties are simulated in one process."""
    db = Path(db)
    return db.with_name(db.name + ".private")


def simulated_bids(setting: Any, participation: Any, seed: int, round: int) -> list[list[float]]:
    """Round ``round``'s bids of truthful simulated bidders: a participation profile from Q and
    values from the setting (tweaked data, absent rows zero); reproducible from (seed, round)."""
    from zkauction.learn.data import sample_tweaked

    frame_seed = int.from_bytes(hashlib.sha3_256(f"zkauction-sim/{seed}/{round}".encode()).digest()[:7], "big")
    return sample_tweaked(setting, participation, 1, frame_seed).values[0].tolist()


class LocalRun:
    """The auctioneer, n simulated truthful bidders, the auditor and (ttp mode) the trusted third
    party over one ledger file, with their keys and secrets in :func:`private_dir`."""

    def __init__(self, db: str | Path, outcome: OutcomeFunction, *, circuit: Any = None, durable: bool = True):
        """``durable=False`` skips the fsync per append (SQLite synchronous=NORMAL): still safe
        against a killed process, not against a power cut."""
        from zkauction.learn.setting import AuctionSetting, ParticipationModel

        self.db = Path(db)
        self.dir = private_dir(db)
        cfg_file = self.dir / RUN_FILE
        if not self.db.is_file() or not cfg_file.is_file():
            raise ProtocolError(f"{self.db}: no local run here (start one with `zkauction run`)")
        self.config = json.loads(cfg_file.read_text())
        self.setting = AuctionSetting.from_dict(self.config["setting"])
        self.participation = ParticipationModel.from_dict(self.config["participation"], self.setting.n)
        self.seed = int(self.config["seed"])
        self.circuit = circuit
        self.ledger = Ledger.open(self.db, durable=durable)
        self.state = read_state(self.ledger)
        ann = self.state.announcement
        keys = {name: SigningKey.load(self.dir / f"{name}.pem") for name in self._key_names(ann.n)}
        self.outcome = outcome
        self.auctioneer = Auctioneer(keys["auctioneer"], self.ledger, outcome,
                                     store=OpeningStore(self.dir / OPENINGS_FILE, durable=durable))
        self.bidders = [
            Bidder(i, keys[f"bidder_{i}"], self.ledger, secret=bytes.fromhex((self.dir / f"bidder_{i}.secret").read_text().strip()))
            for i in range(ann.n)
        ]
        self.auditor = Auditor(keys["auditor"], self.ledger, circuit=circuit, outcome=outcome)
        self.third_party = TrustedThirdParty(keys["third_party"], self.ledger, outcome)
        if ann.auctioneer != keys["auctioneer"].public_hex or [b.key.public_hex for b in self.bidders] != ann.bidders:
            raise ProtocolError(f"{self.dir}: the keys there are not the ones {self.db} announces")

    @staticmethod
    def _key_names(n: int) -> list[str]:
        return ["auctioneer", "auditor", "third_party"] + [f"bidder_{i}" for i in range(n)]

    @classmethod
    def create(
        cls,
        db: str | Path,
        outcome: OutcomeFunction,
        *,
        setting: Any,
        participation: Any,
        input_scale: int,
        auction: dict[str, Any],
        rounds: int,
        audits: int = 1,
        penalty: float | None = None,
        mode: str = "zk",
        seed: int = 0,
        circuit: Any = None,
        extra_config: dict[str, Any] | None = None,
        durable: bool = True,
    ) -> "LocalRun":
        """Generate every party's key, announce the auction, commit the bidders' audit seeds.

        ``penalty`` defaults to (T + 1) * aRgt*, just above section 4.1's threshold T * aRgt*."""
        import secrets as _secrets

        from zkauction.protocol.credibility import argt_bound

        db = Path(db)
        if db.exists() and db.stat().st_size > 0:
            raise ProtocolError(f"{db} already exists: resume it, or choose a new --db")
        d = private_dir(db)
        d.mkdir(parents=True, exist_ok=True)
        if mode not in MODES:
            raise ProtocolError(f"mode must be one of {MODES}, got {mode!r}")
        keys = {name: SigningKey.generate() for name in cls._key_names(setting.n)}
        for name, k in keys.items():
            k.save(d / f"{name}.pem")
        for i in range(setting.n):
            f = d / f"bidder_{i}.secret"
            f.write_text(_secrets.token_hex(32) + "\n")
            f.chmod(0o600)
        if penalty is None:
            penalty = (rounds + 1) * argt_bound(setting)
        (d / OPENINGS_FILE).unlink(missing_ok=True)
        cfg = {"seed": seed, "setting": setting.to_dict(), "participation": participation.to_dict(), **(extra_config or {})}
        (d / RUN_FILE).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        with Ledger.open(db) as ledger:
            Auctioneer(keys["auctioneer"], ledger, outcome).announce(
                n=setting.n, m=setting.m, support=setting.support, input_scale=input_scale, auction=auction,
                rounds=rounds, audits=audits, penalty=penalty, mode=mode,
                bidders=[keys[f"bidder_{i}"].public_hex for i in range(setting.n)],
                auditor=keys["auditor"].public_hex,
                third_party=keys["third_party"].public_hex if mode == "ttp" else None,
            )
        run = cls(db, outcome, circuit=circuit, durable=durable)
        for b in run.bidders:
            b.commit_audit_seed()
        return run

    def close(self) -> None:
        self.auctioneer.store.close()
        self.ledger.close()

    def __enter__(self) -> "LocalRun":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def bids_of_round(self, round: int) -> list[list[float]]:
        return simulated_bids(self.setting, self.participation, self.seed, round)

    def play(self, on_round: Callable[[int], None] | None = None) -> int:
        """Play every round not yet logged (resumes after a crash). Returns how many were played."""
        for b in self.bidders:  # a crash between the announcement and the seed commitments
            if not read_state(self.ledger).commitments:
                b.commit_audit_seed()
        return run_rounds(self.auctioneer, self.bidders, self.bids_of_round, on_round=on_round)

    def reveal_and_select(self, *, withhold: Sequence[int] = ()) -> AuditSelection:
        """Bidders reveal their audit seeds (except ``withhold``, to simulate non-revealers), the
        auditor closes the reveal phase and logs the selection."""
        for b in self.bidders:
            if b.index not in withhold:
                b.reveal_audit_seed()
        self.auditor.close_reveals()
        return self.auditor.select()

    def answer_audit(self, rounds: Sequence[int], *, progress: bool = False,
                     on_round: Callable[[int, float], None] | None = None) -> None:
        """The auctioneer's side of the audit, in the announced mode (proofs are timed)."""
        import time

        st = read_state(self.ledger)
        mode = st.announcement.mode
        for r in rounds:
            t = time.perf_counter()
            if mode == "zk" and r not in st.proofs:
                if self.circuit is None:
                    raise ProtocolError("zk mode needs the circuit to prove")
                self.auctioneer.prove(r, self.circuit, progress=progress)
            elif mode == "reveal" and r not in st.openings:
                self.auctioneer.publish_openings(r)
            elif mode == "ttp" and r not in st.verdicts:
                bids, salts = self.auctioneer.round_inputs(r, st)
                self.third_party.audit_round(r, bids, salts)
            if on_round is not None:
                on_round(r, time.perf_counter() - t)

    def audit(self, *, withhold: Sequence[int] = (), progress: bool = False) -> AuditReport:
        """Reveal, select, answer (prove / publish / third party) and check: the whole audit."""
        sel = self.reveal_and_select(withhold=withhold)
        self.answer_audit(sel.rounds, progress=progress)
        return self.auditor.audit()
