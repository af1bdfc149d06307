"""A whole run in one process with simulated truthful bidders: what ``zkauction run``, ``audit``,
``prove`` and ``demo`` drive.

Every party still keeps its own state: its key, its secret and the last checkpoint it accepted, in
its own file under ``<db>.private/`` (0700 folder, 0600 files). A cheating auctioneer who rolls back,
rewrites or re-keys ``<db>`` cannot touch those; the tests play it by replacing the database file
between two steps. In a deployment the parties run apart (see the service); the protocol is the same.

One round (the paper's Algorithm 1, lines 3-8, with a sealed commit phase)::

    bidders commit -> auctioneer closes the commitments, checkpoint -> bidders check the
    checkpointed close and send openings -> auctioneer checks them (rejections with a reason code),
    computes the canonical outcome, logs it with the rejections in one transaction, checkpoint ->
    bidders check the outcome (and dispute a false rejection).
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from zkauction.protocol.audit import Auditor, AuditReport, audit_draw
from zkauction.protocol.checkpoint import LogView
from zkauction.protocol.log import Ledger, SigningKey, announcing, remove_log_files
from zkauction.protocol.private import private_folder, write_private
from zkauction.protocol.auctioneer import Auctioneer, OpeningStore, TrustedThirdParty
from zkauction.protocol.bidder import Bidder
from zkauction.protocol.announcement import circuit_terms, default_penalty
from zkauction.protocol.state import MODES, OPENINGS, OUTCOME, OutcomeFunction, ProtocolError, first_entry, read_state
from zkauction.protocol.rounds import finish_round, play_round, run_rounds  # noqa: F401  (re-exported)

RUN_FILE = "run.json"
OPENINGS_FILE = "openings.db"


def private_dir(db: str | Path) -> Path:
    """Where a local run keeps every party's secrets and kept checkpoints: ``<db>.private/``."""
    db = Path(db)
    return db.with_name(db.name + ".private")


def simulated_bids(setting: Any, participation: Any, seed: int, round: int) -> list[list[float]]:
    """Round ``round``'s bids of truthful simulated bidders: a participation profile from Q and
    values from the setting (tweaked data, absent rows zero); reproducible from (seed, round)."""
    from zkauction.learn.data import sample_tweaked

    frame_seed = int.from_bytes(hashlib.sha3_256(f"zkauction-sim/{seed}/{round}".encode()).digest()[:7], "big")
    return sample_tweaked(setting, participation, 1, frame_seed).values[0].tolist()


class LocalRun:
    """The auctioneer, n simulated truthful bidders and (ttp mode) the trusted third party over one
    log file; each party's key, secret and kept checkpoint in :func:`private_dir`."""

    def __init__(self, db: str | Path, outcome: OutcomeFunction, *, circuit: Any = None, durable: bool = True,
                 trusted_srs: Sequence[str] = ()):
        """``durable=False`` skips the fsync per transaction (SQLite synchronous=NORMAL): still safe
        against a killed process, not against a power cut."""
        from zkauction.learn.setting import AuctionSetting, ParticipationModel

        self.db = Path(db)
        self.dir = private_dir(db)
        cfg_file = self.dir / RUN_FILE
        if not self.db.is_file() or not cfg_file.is_file():
            raise ProtocolError(f"{self.db}: no local run here (start one with `zkauction run`)")
        try:
            self.config = json.loads(cfg_file.read_text())
            self.setting = AuctionSetting.from_dict(self.config["setting"])
            self.participation = ParticipationModel.from_dict(self.config["participation"], self.setting.n)
            self.seed = int(self.config["seed"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ProtocolError(f"{cfg_file}: not a run description ({e})") from None
        self.circuit = circuit
        self.outcome = outcome
        self.trusted_srs = list(trusted_srs)
        self._played_checked = False  # by this process's bidders: see _check_played
        self.ledger = Ledger.open(self.db, durable=durable)
        try:
            self._open_parties(durable)
        except BaseException:
            self.ledger.close()
            raise

    def _open_parties(self, durable: bool) -> None:
        n = self.setting.n
        keys = {name: SigningKey.load(self.dir / f"{name}.pem") for name in self._key_names(n)}
        self.auctioneer = Auctioneer(keys["auctioneer"], self.ledger, self.outcome,
                                     store=OpeningStore(self.dir / OPENINGS_FILE, durable=durable))
        expected = dict(self.config.get("expected", {}))
        self.bidders = [
            Bidder(i, keys[f"bidder_{i}"], self.ledger, secret=bytes.fromhex((self.dir / f"bidder_{i}.secret").read_text().strip()),
                   view_path=self.dir / f"bidder_{i}.checkpoint.json", expected=expected,
                   record_path=self.dir / f"bidder_{i}.logs.json")
            for i in range(n)
        ]
        self.third_party = TrustedThirdParty(keys["third_party"], self.ledger, self.outcome)
        self.monitor = LogView(keys["auctioneer"].public_hex, self.dir / "monitor.checkpoint.json")

    @property
    def state(self) -> Any:
        return read_state(self.ledger)

    @staticmethod
    def _key_names(n: int) -> list[str]:
        return ["auctioneer", "third_party"] + [f"bidder_{i}" for i in range(n)]

    @classmethod
    def create(cls, db: str | Path, outcome: OutcomeFunction, *, setting: Any, participation: Any, input_scale: int,
               auction: dict[str, Any], rounds: int, audits: int = 1, penalty: float | None = None, mode: str = "zk",
               seed: int = 0, circuit: Any = None, extra_config: dict[str, Any] | None = None, durable: bool = True,
               trusted_srs: Sequence[str] = (), block: int = 1, deadlines: dict[str, float] | None = None) -> "LocalRun":
        """Generate every party's key, announce the auction, have every bidder register.
        ``block``: rounds per block (1: one round at a time; see zkauction.protocol.rounds.play_block).
        ``deadlines``: what the announcement states (a run in one process keeps none; a verifier
        takes silence past them for a breach, :func:`~zkauction.protocol.audit.liveness_limit_s`).

        ``penalty`` defaults to (T + 1) times the most a round can take within the public checks
        (:func:`~zkauction.protocol.announcement.default_penalty`), just above the least credible one."""
        db = Path(db)
        if db.exists() and db.stat().st_size > 0:
            raise ProtocolError(f"{db} already exists: resume it, or choose a new --db")
        if mode not in MODES:
            raise ProtocolError(f"mode must be one of {MODES}, got {mode!r}")
        if penalty is not None and not 0 <= penalty < math.inf:
            raise ProtocolError(f"the penalty must be a finite non-negative number, got {penalty!r}")
        d = private_folder(private_dir(db))
        keys = {name: SigningKey.generate() for name in cls._key_names(setting.n)}
        for name, k in keys.items():
            k.save(d / f"{name}.pem")
        for i in range(setting.n):
            write_private(d / f"bidder_{i}.secret", secrets.token_hex(32) + "\n")
            (d / f"bidder_{i}.checkpoint.json").unlink(missing_ok=True)
            (d / f"bidder_{i}.logs.json").unlink(missing_ok=True)  # a new secret: no log ids yet
        (d / "monitor.checkpoint.json").unlink(missing_ok=True)
        if penalty is None:
            penalty = default_penalty(rounds, setting.support, auction.get("output_scale"))
        (d / OPENINGS_FILE).unlink(missing_ok=True)
        # What each bidder was told out of band and checks in the announcement before registering.
        expected = {k: auction[k] for k in ("manifest_sha256", "vk_sha256") if k in auction}
        if circuit is not None:  # the circuit's own terms: its hashes, scales, supports, n and m
            expected.update(circuit_terms(circuit))
        expected.update(mode=mode, rounds=rounds, audits=audits, penalty=float(penalty),
                        third_party=keys["third_party"].public_hex if mode == "ttp" else None)
        cfg = {"seed": seed, "setting": setting.to_dict(), "participation": participation.to_dict(),
               "expected": expected, **(extra_config or {})}
        write_private(d / RUN_FILE, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        with announcing(db) as ledger:  # (a refused announcement leaves no log behind)
            Auctioneer(keys["auctioneer"], ledger, outcome).announce(
                n=setting.n, m=setting.m, support=setting.support, input_scale=input_scale, auction=auction,
                rounds=rounds, audits=audits, penalty=penalty, mode=mode,
                bidders=[keys[f"bidder_{i}"].public_hex for i in range(setting.n)],
                third_party=keys["third_party"].public_hex if mode == "ttp" else None, block=block,
                deadlines=deadlines,
            )
        run = cls(db, outcome, circuit=circuit, durable=durable, trusted_srs=trusted_srs)
        try:
            run.register()
        except BaseException:  # (an announcement its bidders refuse, e.g. for T = 10^20: no log behind either)
            if len(run.ledger) == 1:  # only its own announcement, under the lock the run holds
                remove_log_files(db)
            run.close()
            raise
        return run

    def register(self) -> None:
        for b in self.bidders:
            b.register()
        self.auctioneer.checkpoint()

    def close(self) -> None:
        for b in self.bidders:
            if b._view is not None:
                b._view.flush()
        self.monitor.flush()
        self.auctioneer.store.close()
        self.ledger.close()

    def __enter__(self) -> "LocalRun":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def bids_of_round(self, round: int) -> list[list[float]]:
        return simulated_bids(self.setting, self.participation, self.seed, round)

    def rounds_done(self) -> int:
        ann = self.auctioneer.announcement()
        r = 0
        while r < ann.rounds and self.ledger.entries(kind=OUTCOME, round=r + 1):
            r += 1
        return r

    def play(self, on_round: Callable[[int], None] | None = None) -> int:
        """Play every round not yet logged (resumes after a crash). Returns how many were played."""
        self.register()  # a crash between the announcement and the registrations
        self._check_played()
        played = run_rounds(self.auctioneer, self.bidders, self.bids_of_round, on_round=on_round)
        self._played_checked = True  # every round it played, its bidders checked
        return played

    def _check_played(self) -> None:
        """Once per process, before it plays on or reveals: each bidder checks every logged outcome
        of a round it bid in (on its commitment, no charge beyond its bids' worth), as a restarted
        service client does. What a bidder checked before a crash is on no record (its kept
        checkpoint on disk may cover outcomes it never checked: written on close, or every 64
        entries), and a host that crashed on purpose after logging outcomes could rewrite them."""
        if self._played_checked:
            return
        ann = self.auctioneer.announcement()
        outcomes = [e for e in self.ledger.entries(kind=OUTCOME) if e.signer == ann.auctioneer]
        for b in self.bidders:
            for e in outcomes:
                bids = self.bids_of_round(e.round)[b.index]
                if b.committed_bids(bids) is not None and b.resume_round(e.round, bids):
                    b.check_outcome(e.round)
        self._played_checked = True

    def reveal(self, *, withhold: Sequence[int] = ()) -> Any:
        """Bidders reveal their audit seeds (except ``withhold``, to simulate non-revealers); the
        auctioneer closes the reveal phase. Returns the audit draw."""
        ann = self.auctioneer.announcement()
        done = self.rounds_done()
        if done < ann.rounds:
            raise ProtocolError(f"{done} of {ann.rounds} rounds played; resume with `zkauction run` before the audit")
        self._check_played()  # a new process (`zkauction audit` after a crash): the outcomes first
        for b in self.bidders:
            if b.index not in withhold:
                b.reveal()
        self.auctioneer.close_reveals()
        return audit_draw(read_state(self.ledger))

    def answer_audit(self, rounds: Sequence[int], *, progress: bool = False,
                     on_round: Callable[[int, float], None] | None = None,
                     workers: int | None = 1, ray_address: str | None = None) -> None:
        """The auctioneer's side of the audit, in the announced mode (proofs are timed). zk mode with
        ``workers`` other than 1 (None: one per core) or a ``ray_address`` proves the rounds in a
        :class:`~zkauction.zk.pool.ProvingPool`, then checks and logs each bundle in round order."""
        st = read_state(self.ledger)
        mode = st.announcement.mode
        pooled: dict[int, tuple[Any, float]] = {}
        if mode == "zk" and (workers != 1 or ray_address is not None):
            pooled = self._prove_pooled([r for r in dict.fromkeys(rounds) if r not in st.proofs], workers, ray_address, progress)
        for r in rounds:
            t = time.perf_counter()
            if mode == "zk" and r not in st.proofs:
                if self.circuit is None:
                    raise ProtocolError("zk mode needs the circuit to prove")
                if r in pooled:
                    self.auctioneer.log_proof(r, pooled[r][0], self.circuit)
                else:
                    self.auctioneer.prove(r, self.circuit, progress=progress)
            elif mode == "reveal" and first_entry(self.ledger, OPENINGS, r, st.announcement.auctioneer) is None:
                self.auctioneer.publish_openings(r)  # (one only: a malformed one logged is not counted, and a breach)
            elif mode == "ttp" and r not in st.ttp_verdicts:
                bids, salts = self.auctioneer.round_inputs(r)
                self.third_party.audit_round(r, bids, salts)
                self.auctioneer.checkpoint()
            if on_round is not None:
                on_round(r, time.perf_counter() - t + pooled.pop(r, (None, 0.0))[1])

    def _prove_pooled(self, rounds: list[int], workers: int | None, ray_address: str | None,
                      progress: bool) -> dict[int, tuple[Any, float]]:
        """{round: (bundle, seconds its proof took)} for ``rounds``, proven in a pool (not logged)."""
        from zkauction.zk.pool import ProvingPool

        if not rounds:
            return {}
        if self.circuit is None:
            raise ProtocolError("zk mode needs the circuit to prove")
        jobs = [(r, *self.auctioneer.round_inputs(r)) for r in rounds]
        secs: dict[int, float] = {}
        with ProvingPool(self.circuit, workers=workers, ray_address=ray_address) as pool:
            bundles = pool.prove_many(jobs, progress=progress, on_done=secs.__setitem__)
        return {r: (b, secs.get(r, 0.0)) for r, b in zip(rounds, bundles)}

    def auditor(self) -> Auditor:
        return Auditor(self.ledger, circuit=self.circuit, outcome=self.outcome, trusted_srs=self.trusted_srs)

    def verdict(self) -> AuditReport:
        """The audit's verdict, as any verifier computes it (after the monitor accepted the log)."""
        self.monitor.observe(self.ledger)
        return self.auditor().audit()

    def audit(self, *, withhold: Sequence[int] = (), progress: bool = False) -> AuditReport:
        """Reveal, draw, answer (prove / publish / third party) and compute the verdict."""
        draw = self.reveal(withhold=withhold)
        self.answer_audit(draw.rounds, progress=progress)
        return self.verdict()
