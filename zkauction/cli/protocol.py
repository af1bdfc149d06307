"""Protocol commands: ``run``, ``audit``, ``prove``, ``penalty``, ``demo``. Each calls the library a
Python user would call (:class:`zkauction.protocol.local.LocalRun`, :mod:`zkauction.protocol.demo`,
:mod:`zkauction.protocol.credibility`). ``verify`` lives in :mod:`zkauction.cli.zk`; ``log`` in
:mod:`zkauction.cli.log`."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Optional

import typer

from zkauction.zk.srs import check_pins
from zkauction.protocol.demo import play, print_report, run_demo, srs_note, start_or_resume  # noqa: F401



def _user_errors() -> tuple[type[BaseException], ...]:
    from zkauction.zk.bundle import BundleError
    from zkauction.learn.checkpoint import CheckpointError
    from zkauction.zk.circuit import CircuitError, RoundInputError
    from zkauction.zk.commitments import CommitmentError
    from zkauction.protocol.credibility import CredibilityError
    from zkauction.protocol.log import LedgerError
    from zkauction.protocol.state import ProtocolError
    from zkauction.learn.setting import SettingError

    return (ProtocolError, LedgerError, CircuitError, RoundInputError, CommitmentError, BundleError,
            CredibilityError, CheckpointError, SettingError, FileNotFoundError)


def _fail(e: BaseException | str) -> None:
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(2)


def default_db(db: Path | None) -> Path:
    """--db, else $ZKAUCTION_DB, else ./auction.db."""
    import os

    return db if db is not None else Path(os.environ.get("ZKAUCTION_DB", "auction.db"))


def open_run(db: Path, trusted_srs: list[str] | None = None) -> Any:
    if not db.is_file():
        raise FileNotFoundError(f"{db}: no such log (start a run with `zkauction run`)")
    return start_or_resume(db, None, rounds=None, audits=1, penalty=None, mode="zk", seed=0, trusted_srs=trusted_srs)


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_cmd(
        circuit: Optional[Path] = typer.Option(None, "--circuit", help="compiled circuit folder (circuits/NAME); not needed to resume"),
        rounds: Optional[int] = typer.Option(None, "--rounds", help="T, the number of rounds"),
        db: Path = typer.Option(..., "--db", help="log file (SQLite); an existing run there is resumed"),
        seed: int = typer.Option(0, "--seed", help="seed of the simulated bidders' values"),
        audits: int = typer.Option(1, "--audits", help="k, the number of audited rounds"),
        penalty: Optional[float] = typer.Option(None, "--penalty", help="penalty if an audit fails (default (T+1) x aRgt*, with the public checks' rounding)"),
        mode: str = typer.Option("zk", "--mode", help="verification mode: zk, reveal or ttp (trusted third party)"),
        trusted_srs: list[str] = typer.Option([], "--trusted-srs", help="SHA-256 of a ceremony SRS to trust (repeatable)"),
        block: int = typer.Option(1, "--block", help="rounds per block: each step of a block's rounds in one pass, "
                                  "one signature per party, one transaction (see README, per-round speed)"),
        as_json: bool = typer.Option(False, "--json", help="print {rounds, seconds, rounds_per_s, ...} as JSON"),
    ) -> None:
        """Run T sealed-bid rounds with simulated truthful bidders over the transparency log (every
        bidder registers, commits, opens after the checkpointed close, checks its outcome).
        Interrupted runs resume where they stopped."""
        try:
            pins = check_pins(trusted_srs)
            run = start_or_resume(db, circuit, rounds=rounds, audits=audits, penalty=penalty, mode=mode, seed=seed,
                                  trusted_srs=pins, block=block)
            say = (lambda *a, **k: None) if as_json else typer.echo
            with run:
                ann = run.auctioneer.announcement()
                done = run.rounds_done()
                say(f"{'resuming' if done else 'running'} {ann.auction.get('name')} for T={ann.rounds} rounds "
                           f"(k={ann.audits} audits, mode {ann.mode}, penalty {ann.penalty:g}) -> {db}")
                if run.circuit is not None:
                    say(f"  {srs_note(run.circuit, pins)}")
                played, secs = play(run, echo=say)
                cp = run.ledger.latest_checkpoint()
                revenue = sum(sum(e.data["payment"]) for e in run.ledger.entries(kind="outcome"))
        except _user_errors() + (ValueError,) as e:
            _fail(e)
        if as_json:
            typer.echo(json.dumps({"rounds": played, "seconds": secs, "rounds_per_s": played / secs if secs > 0 else None,
                                   "rounds_total": ann.rounds, "revenue": revenue, "log_entries": cp.size,
                                   "checkpoint": cp.to_dict()}))
            return
        if played:
            typer.echo(f"played {played} rounds in {secs:.1f} s ({played / secs:.1f} rounds/s); revenue so far "
                       f"{revenue:.4f} ({revenue / ann.rounds:.4f} per round of T); log {cp.size} entries, "
                       f"checkpoint root {cp.root[:16]}...")
        else:
            typer.echo(f"nothing to play: every round is logged; log {cp.size} entries, checkpoint root {cp.root[:16]}...")

    @app.command("audit")
    def audit_cmd(
        db: Path = typer.Option(..., "--db", help="log of a finished run"),
        withhold: list[int] = typer.Option([], "--withhold", help="simulate a bidder that never reveals its audit seed"),
        trusted_srs: list[str] = typer.Option([], "--trusted-srs", help="SHA-256 of a ceremony SRS to trust (repeatable)"),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="zk: prove the audited rounds in N local processes (default: one per core; 1: in this process)"),
        ray: Optional[str] = typer.Option(None, "--ray", help="zk: prove on a Ray cluster at ADDRESS ('auto', 'ray://host:port', 'local'); needs pip install ray"),
        as_json: bool = typer.Option(False, "--json", help="print the verdict as JSON"),
    ) -> None:
        """After round T: bidders reveal their audit seeds (each with the checkpoint it kept), the
        audited rounds are drawn from those seeds alone, the auctioneer proves them (zk) or opens them
        (reveal, ttp), and the verdict is computed from the log as any verifier would. Exit 1 unless
        the audit passes."""
        try:
            pins = check_pins(trusted_srs)
            with open_run(db, pins) as run:
                n = run.setting.n
                bad = [i for i in withhold if not 0 <= i < n]
                if bad:
                    raise ValueError(f"--withhold {bad[0]}: bidders are numbered 0..{n - 1}")
                t = time.perf_counter()
                draw = run.reveal(withhold=withhold)
                say = (lambda *a, **k: None) if as_json else typer.echo
                note = f" ({draw.fallback})" if draw.fallback else ""
                say(f"audited rounds: {draw.rounds}{note}; seeds revealed by {draw.revealed}")
                run.answer_audit(draw.rounds, on_round=lambda r, s: say(f"  round {r}: answered in {s:.1f} s"),
                                 workers=workers, ray_address=ray)
                report = run.verdict()
                if as_json:
                    typer.echo(json.dumps(report.to_dict(), indent=2))
                else:
                    print_report(report, typer.echo)
                    typer.echo(f"audit took {time.perf_counter() - t:.1f} s")
        except _user_errors() + (ValueError,) as e:
            _fail(e)
        if not report.valid:
            raise typer.Exit(1)

    @app.command("prove")
    def prove_cmd(
        db: Optional[Path] = typer.Option(None, "--db", help="log of the run (default: $ZKAUCTION_DB or ./auction.db)"),
        round: int = typer.Option(..., "--round", min=0, max=2**63 - 1, help="round R to prove"),
        out: Optional[Path] = typer.Option(None, "--out", help="proof bundle to write (default: proof_round_R.json)"),
        as_json: bool = typer.Option(False, "--json", help="print {round, seconds, out} as JSON"),
    ) -> None:
        """Prove round R in zero knowledge and write its proof bundle, with the log proof that binds
        it to the round (also logged)."""
        db = default_db(db)
        out = out or Path(f"proof_round_{round}.json")
        try:
            with open_run(db) as run:
                if run.circuit is None:
                    raise FileNotFoundError("the run's circuit folder is missing")
                ann = run.auctioneer.announcement()
                if not 1 <= round <= ann.rounds:
                    raise ValueError(f"--round {round}: the run has rounds 1..{ann.rounds}")
                t = time.perf_counter()
                bundle = run.auctioneer.prove(round, run.circuit)
                bundle.save(out)
        except _user_errors() + (ValueError,) as e:
            _fail(e)
        secs = time.perf_counter() - t
        if as_json:
            typer.echo(json.dumps({"round": round, "seconds": secs, "out": str(out)}))
            return
        typer.echo(f"proved round {round} in {secs:.1f} s -> {out}")

    @app.command("penalty")
    def penalty_cmd(
        source: Path = typer.Argument(..., help="a trained auction folder, a circuit folder or a config .toml"),
        rounds: int = typer.Option(..., "--rounds", help="T"),
        audits: int = typer.Option(1, "--audits", help="k"),
        penalty: Optional[float] = typer.Option(None, "--penalty", help="penalty to simulate (default: the minimal one)"),
        accounting: str = typer.Option("keep", "--accounting", help="keep: a caught auctioneer keeps its gains; forfeit: section 4.1's algebra"),
        trials: Optional[int] = typer.Option(None, "--trials", max=10**9, help="Monte-Carlo trials per strategy (default 20000, fewer where T x trials would pass the simulation's cap)"),
        plot: Optional[Path] = typer.Option(None, "--plot", help="write a plot of profit against penalty"),
        as_json: bool = typer.Option(False, "--json"),
        seed: int = typer.Option(0, "--seed", min=0),
    ) -> None:
        """aRgt*, the minimal penalty for T rounds and k audits, and simulated deviating auctioneers."""
        from zkauction.protocol import credibility as cr

        try:
            if accounting not in cr.ACCOUNTINGS:
                raise ValueError(f"--accounting {accounting!r}: expected one of {', '.join(cr.ACCOUNTINGS)}")
            if rounds < 1:
                raise ValueError(f"--rounds {rounds}: T must be a positive integer")
            if not 1 <= audits <= rounds:
                raise ValueError(f"--audits {audits}: audits k must be in [1, T={rounds}]")
            if penalty is not None and not 0 <= penalty < math.inf:
                raise ValueError(f"--penalty {penalty}: must be a finite non-negative number")
            if trials is not None and trials < 2:
                raise ValueError(f"--trials {trials}: must be at least 2")
            cap = cr.MAX_SIMULATED_GAINS
            if rounds > cap // 2:
                raise ValueError(f"--rounds {rounds}: too many rounds to simulate (T x trials gains are held in memory, at most "
                                 f"{cap:,}; T at most {cap // 2:,})")
            if trials is None:
                trials = min(20000, cap // rounds)
            elif trials * rounds > cap:
                raise ValueError(f"--trials {trials} x --rounds {rounds} = {trials * rounds:,} simulated gains, above the cap of "
                                 f"{cap:,} held in memory: give --trials {cap // rounds} or fewer")
            setting, participation, net = _setting_source(source)
            a = cr.argt_bound(setting)
            # what a run of a circuit announces: outcomes on its grid, whose rounding the public checks allow
            scales = json.loads((source / "manifest.json").read_text()).get("output_scales") if (source / "manifest.json").is_file() else None
            accepted = rounds * cr.round_gain_bound(setting.support, min(scales.values())) if isinstance(scales, dict) and scales else None
            reports = {acc: cr.minimal_penalty(rounds, audits, a, acc) for acc in cr.ACCOUNTINGS}
            p = reports[accounting].minimal_penalty if penalty is None else penalty
            gains = cr.auction_gain(setting, participation, net)
            w = max(1, rounds // 4)
            sims = [
                cr.simulate("always", rounds, audits, p, gains, trials=trials, accounting=accounting, seed=seed),
                cr.simulate("rounds", rounds, audits, p, gains, deviations=1, trials=trials, accounting=accounting, seed=seed),
                cr.simulate("rounds", rounds, audits, p, gains, deviations=w, trials=trials, accounting=accounting, seed=seed),
                cr.simulate("threshold", rounds, audits, p, gains, trials=trials, accounting=accounting, seed=seed),
            ]
            pool = gains.values()
            tau = p / rounds
            hit = pool[pool >= tau]
            closed = [
                cr.expected_profit("always", rounds, audits, p, float(pool.mean()), accounting=accounting),
                cr.expected_profit("rounds", rounds, audits, p, float(pool.mean()), deviations=1, accounting=accounting),
                cr.expected_profit("rounds", rounds, audits, p, float(pool.mean()), deviations=w, accounting=accounting),
                cr.expected_profit("threshold", rounds, audits, p, float(pool.mean()), accounting=accounting,
                                   deviate_probability=len(hit) / len(pool),
                                   gain_mean_when_deviating=float(hit.mean()) if len(hit) else 0.0),
            ]
            if plot is not None:
                cr.plot_profit(rounds, audits, a, gains, plot, accounting=accounting, seed=seed,
                               trials=min(max(200, trials // 10), cap // rounds))  # >= 2: T <= cap / 2
        except _user_errors() + (ValueError,) as e:
            _fail(e)
        if as_json:
            typer.echo(json.dumps({"argt_bound": a, "minimal_penalty": {k: v.to_dict() for k, v in reports.items()},
                                   "bidders_accept_above": accepted, "penalty": p, "simulations": [dict(s.to_dict(), closed_form=c) for s, c in zip(sims, closed)]},
                                  indent=2))
            return
        typer.echo(f"aRgt* = {a:g} (sum over items of the highest value in the support)")
        typer.echo(f"section 4.1 threshold T x aRgt* = {rounds * a:g}")
        for acc, r in reports.items():
            typer.echo(f"minimal penalty, T={rounds}, k={audits}, accounting '{acc}': {r.minimal_penalty:.6g} "
                       f"(worst case: deviating in {r.worst_deviations} round(s))")
        if accepted is not None:
            typer.echo(f"a run of this circuit: bidders accept a penalty above {accepted:.6g} (T x aRgt* widened by the public "
                       f"checks' rounding of outcomes on the grid 2^-{min(scales.values())}); the default is (T+1)/T x that")
        gain_note = "the auction's revenue subtracted" if net is not None else "honest revenue taken as 0"
        typer.echo(f"simulated deviating auctioneers at penalty {p:g} ({trials} trials, accounting '{accounting}', "
                   f"per-round gain = first-price revenue on the bids, {gain_note}):")
        for s, c in zip(sims, closed):
            label = {"always": "always", "threshold": "threshold (A.2)"}.get(s.strategy, f"{s.mean_deviations:g} round(s)")
            typer.echo(f"  {label:<18} simulated {s.mean_profit:+.4f} +- {s.ci95:.4f} (95% CI), closed form {c:+.4f}, "
                       f"caught {s.catch_rate:.3f}")
        if trials < 1000:
            typer.echo(f"  ({trials} trials: rare catches are seldom sampled; the closed forms are exact)")
        if plot is not None:
            typer.echo(f"plot -> {plot}")

    @app.command("demo")
    def demo_cmd(
        out: Path = typer.Option(Path("demo-out"), "--out", help="work folder (git-ignored)"),
        auction: Optional[Path] = typer.Option(None, "--auction", help="trained auction (default: the shipped 2x2 AMA, else a shipped regret net)"),
        rounds: int = typer.Option(200, "--rounds", help="T"),
        audits: int = typer.Option(2, "--audits", help="k"),
        seed: int = typer.Option(0, "--seed"),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="prove the audited rounds in N local processes (default: one per core; 1: in this process)"),
        ray: Optional[str] = typer.Option(None, "--ray", help="prove on a Ray cluster at ADDRESS ('auto', 'ray://host:port', 'local'); needs pip install ray"),
        as_json: bool = typer.Option(False, "--json", help="print only the summary, as JSON"),
        network: bool = typer.Option(False, "--network", help="every party its own process over HTTP on 127.0.0.1: "
                                     "`zkauction serve`, one `zkauction bidder run` per bidder, a monitor"),
    ) -> None:
        """The whole flow on a small shipped auction: its shipped circuit (circuits/NAME, compiled from
        the same weights) or else a fresh compile, both with a dev SRS (INSECURE); run T rounds with
        simulated bidders, audit k rounds in zero knowledge, verify, and print timings."""
        try:
            if network:
                if workers is not None or ray is not None:
                    _fail("--workers and --ray size the in-process demo's proving pool: not with --network")
                from zkauction.service.netdemo import run_network_demo
                summary = run_network_demo(out, auction=auction, rounds=rounds, audits=audits, seed=seed,
                                           echo=(lambda *a, **k: None) if as_json else typer.echo)
            else:
                summary = run_demo(out, auction=auction, rounds=rounds, audits=audits, seed=seed, workers=workers,
                                   ray_address=ray, echo=(lambda *a, **k: None) if as_json else typer.echo)
        except _user_errors() as e:
            _fail(e)
        if as_json:
            typer.echo(json.dumps(summary, indent=2))
        if not summary["audit_valid"] or not summary["verified"]:
            raise typer.Exit(1)


def _setting_source(source: Path) -> tuple[Any, Any, Any]:
    """(setting, participation, net or None) from a trained folder, a circuit folder or a config."""
    if (source / "manifest.json").is_file():
        from zkauction.zk.circuit import Circuit

        circuit = Circuit.load(source, check_hashes=False)
        setting = circuit.auction_setting()
        return setting, circuit.participation_model(), None
    if (source / "config.json").is_file():
        from zkauction.learn.checkpoint import load_auction

        net = load_auction(source)
        return net.setting, net.participation, net
    if source.suffix == ".toml" and source.is_file():
        from zkauction.learn.config import load_config

        cfg = load_config(source)
        return cfg.setting, cfg.participation, None
    raise FileNotFoundError(f"{source}: expected a trained auction folder, a circuit folder or a config .toml")


