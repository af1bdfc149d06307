"""The whole flow on a small shipped auction (what ``zkauction demo`` runs), and opening or
starting a local run on a compiled circuit (what ``zkauction run`` does).

The demo: the shipped circuit (compiled from the same weights) or a fresh compile, both with a dev
SRS (untrusted: whoever generated it could forge proofs); T rounds with simulated truthful bidders
over the transparency log (registration, sealed commit phase, checkpoints kept by every bidder);
the audit draw from the bidders' seeds; proofs of the audited rounds; and each proof checked as a
bidder would, with the public artefacts, the log proof in the bundle and its own kept checkpoint.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from zkauction.protocol.state import ProtocolError


INSECURE = "INSECURE dev SRS: whoever generated it can forge proofs; for demos and tests only"


def load_circuit(path: Path) -> Any:
    from zkauction.zk.circuit import Circuit

    return Circuit.load(path)


def auction_info(circuit: Any) -> dict[str, Any]:
    from zkauction.zk.circuit import ezkl_version, sha256_file

    return {
        "name": str(circuit.manifest.get("name", circuit.dir.name)),
        "manifest_sha256": circuit.manifest_sha256(),
        "vk_sha256": circuit.vk_sha256(),
        "ezkl_version": ezkl_version(),
        "srs_sha256": sha256_file(circuit.check_srs()),
        # the outcome grid: feasibility and IR are checked publicly up to one step per bidder
        "output_scale": min(circuit.output_scales.values()),
    }


def srs_note(circuit: Any, trusted_srs: list[str]) -> str:
    """The verifier's own label of the circuit's SRS (never the manifest's word)."""
    from zkauction.zk.srs import label_srs

    return str(label_srs(circuit.check_srs(), trusted_srs))


def start_or_resume(
    db: Path, circuit_dir: Path | None, *, rounds: int | None, audits: int, penalty: float | None, mode: str, seed: int,
    trusted_srs: list[str] | None = None, block: int = 1,
) -> Any:
    """Open the local run in ``db`` (resuming it) or create one for ``circuit_dir``."""
    from zkauction.protocol.local import LocalRun, RUN_FILE, private_dir
    from zkauction.protocol.auctioneer import circuit_outcome_function
    from zkauction.protocol.state import ProtocolError

    cfg_file = private_dir(db) / RUN_FILE
    if db.is_file() and not cfg_file.is_file():
        raise ProtocolError(f"{db} is not a local run of this machine: its parties' files ({cfg_file}) are missing")
    if db.is_file():
        try:
            cfg = json.loads(cfg_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ProtocolError(f"{cfg_file}: not valid JSON ({e})") from None
        if not isinstance(cfg, dict):
            raise ProtocolError(f"{cfg_file}: not a run description")
        if "circuit" not in cfg and circuit_dir is None:
            raise ProtocolError(f"{db} records no circuit folder (a run made from Python?): give --circuit DIR")
        recorded = Path(cfg.get("circuit") or circuit_dir)
        if circuit_dir is not None and circuit_dir.resolve() != recorded.resolve():
            raise ProtocolError(f"{db} runs the circuit {recorded}, not {circuit_dir}")
        circuit = load_circuit(recorded)
        run = LocalRun(db, circuit_outcome_function(circuit), circuit=circuit, trusted_srs=trusted_srs or [])
        ann = run.auctioneer.announcement()
        if rounds is not None and rounds != ann.rounds:
            run.close()
            raise ProtocolError(f"{db} announces T = {ann.rounds} rounds, not {rounds} (resume with the same T or use a new --db)")
        if block != 1 and block != ann.block:
            run.close()
            raise ProtocolError(f"{db} announces blocks of {ann.block} rounds, not {block} (resume without --block)")
        if ann.auction.get("manifest_sha256") != circuit.manifest_sha256():
            run.close()
            raise ProtocolError(f"{recorded} is not the circuit {db} announces (manifest changed)")
        return run
    if circuit_dir is None:
        raise ProtocolError(f"{db}: no run there yet; give --circuit to start one")
    if rounds is None:
        raise ProtocolError("give --rounds T to start a run")
    if rounds < 1 or not 1 <= audits <= rounds:
        raise ProtocolError(f"--rounds {rounds}, --audits {audits}: need 1 <= k <= T")
    if penalty is not None and not penalty >= 0:
        raise ProtocolError(f"--penalty {penalty}: must be a non-negative number")
    if not 1 <= block <= rounds:
        raise ProtocolError(f"--block {block}: need 1 <= block <= T = {rounds}")
    if mode not in ("zk", "reveal", "ttp"):
        raise ProtocolError(f"--mode {mode!r}: expected zk, reveal or ttp")
    circuit = load_circuit(circuit_dir)
    from zkauction.protocol.announcement import circuit_terms, penalty_problem

    problem = penalty_problem(penalty, rounds, circuit.support, circuit_terms(circuit)["output_scale"])
    if problem:
        raise ProtocolError(problem)
    setting = circuit.auction_setting()
    participation = circuit.participation_model()
    return LocalRun.create(
        db, circuit_outcome_function(circuit), setting=setting, participation=participation,
        input_scale=circuit.input_scale, auction=auction_info(circuit), rounds=rounds, audits=audits,
        penalty=penalty, mode=mode, seed=seed, circuit=circuit, trusted_srs=trusted_srs or [], block=block,
        extra_config={"circuit": str(circuit_dir.resolve())},
    )


# --------------------------------------------------------------------------------------------------
# The demo


REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_AUCTIONS = ("ama_2x2_uniform",)  # preferred, in order; else any small shipped regret net


def default_demo_auction() -> Path:
    """The shipped 2x2 AMA if present (proves in seconds), else the smallest shipped auction."""
    from zkauction.protocol.state import ProtocolError

    for base in (Path.cwd() / "trained", REPO_ROOT / "trained"):
        for name in DEMO_AUCTIONS:
            if (base / name / "config.json").is_file():
                return base / name
    candidates = []
    for base in (Path.cwd() / "trained", REPO_ROOT / "trained"):
        for cfg in sorted(base.glob("*/config.json")) if base.is_dir() else []:
            try:
                d = json.loads(cfg.read_text())
                size = int(d["setting"]["n_bidders"]) * int(d["setting"]["n_items"])
            except (ValueError, KeyError, TypeError):
                continue
            if (cfg.parent / "weights.pt").is_file():
                candidates.append((size, cfg.parent))
    if not candidates:
        raise ProtocolError("no shipped auction under trained/: pass --auction trained/NAME")
    return min(candidates)[1]


def shipped_circuit(trained: Path) -> Path | None:
    """``circuits/<name>`` (in the working folder or the repository) compiled from exactly these
    weights, or None. Its dev SRS travels with it; its proving key is regenerated on demand."""
    for base in (Path.cwd() / "circuits", REPO_ROOT / "circuits"):
        if _built_from(base / trained.name, trained):
            return base / trained.name
    return None


def _built_from(circuit_dir: Path, trained: Path) -> bool:
    """Whether the circuit in ``circuit_dir`` was compiled from ``trained``'s weights."""
    from zkauction.zk.circuit import sha256_file

    mf = circuit_dir / "manifest.json"
    if not mf.is_file() or not (trained / "weights.pt").is_file():
        return False
    try:
        return json.loads(mf.read_text())["net"]["weights_sha256"] == sha256_file(trained / "weights.pt")
    except (ValueError, KeyError):
        return False


def _same_weights(circuit_dir: Path, trained: Path) -> bool:
    """A compiled circuit in ``circuit_dir`` from ``trained``'s weights, proving key included."""
    return _built_from(circuit_dir, trained) and (circuit_dir / "pk.key").is_file()


def demo_folders(auction: str | Path | None, out: str | Path, rounds: Any, audits: Any) -> tuple[Path, Path]:
    """Check a demo's arguments (both demos): the trained auction folder and the output folder
    (created), or :class:`ProtocolError` naming the bad option."""
    if not isinstance(rounds, int) or rounds < 1 or not isinstance(audits, int) or not 1 <= audits <= rounds:
        raise ProtocolError(f"--rounds {rounds}, --audits {audits}: need 1 <= k <= T")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ProtocolError(f"--out {out}: not a folder")
    trained = Path(auction) if auction is not None else default_demo_auction()
    if not (trained / "config.json").is_file():
        raise ProtocolError(f"--auction {trained}: not a trained auction folder (no config.json)")
    out.mkdir(parents=True, exist_ok=True)
    return trained, out


def run_demo(
    out: str | Path = "demo-out",
    *,
    auction: str | Path | None = None,
    rounds: int = 200,
    audits: int = 2,
    seed: int = 0,
    echo: Any = print,
    workers: int | None = 1,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Compile (dev SRS, INSECURE), run T rounds, audit k in zk, verify as a bidder would; returns
    the summary (also written to ``out/summary.json``). ``workers``, ``ray_address``: where the
    audited rounds are proven (:meth:`~zkauction.protocol.local.LocalRun.answer_audit`)."""
    from zkauction.zk.bundle import ProofBundle, verify_bundle
    from zkauction.zk.circuit import copy_public_artefacts
    from zkauction.zk.compile import compile_auction
    from zkauction.protocol.credibility import argt_bound, minimal_penalty
    from zkauction.protocol.bundle_log import check_bundle_against_ledger, check_log_proof
    from zkauction.protocol.local import private_dir
    from zkauction.protocol.state import read_state

    t_all = time.perf_counter()
    trained, out = demo_folders(auction, out, rounds, audits)
    circuit_dir = out / "circuit"
    timings: dict[str, float] = {}

    echo(f"[1/5] auction {trained}")
    t = time.perf_counter()
    shipped = shipped_circuit(trained)
    if _same_weights(circuit_dir, trained):
        circuit = load_circuit(circuit_dir)
        source = f"reused {circuit_dir}"
        echo(f"      reusing the compiled circuit in {circuit_dir}")
    elif shipped is not None:
        shutil.rmtree(circuit_dir, ignore_errors=True)
        shutil.copytree(shipped, circuit_dir)
        circuit = load_circuit(circuit_dir)
        circuit.ensure_proving_key()
        source = f"shipped {shipped}"
        echo(f"      using the shipped circuit {shipped} (compiled from these weights; proving key regenerated)")
    else:
        echo(f"      compiling to {circuit_dir} with a locally generated SRS")
        kind = json.loads((trained / "config.json").read_text()).get("kind") if (trained / "config.json").is_file() else None
        # An affine maximizer fits in 2^12 rows (docs/reference.md: proving ~2 s there, ~12 s at the default 15).
        circuit = compile_auction(trained, circuit_dir, dev_srs=True, **({"max_logrows": 12} if kind == "ama" else {}))
        source = "compiled"
    timings["compile_s"] = time.perf_counter() - t
    echo(f"      logrows {circuit.logrows}, input scale {circuit.input_scale}; {timings['compile_s']:.1f} s")
    echo(f"      WARNING: {INSECURE}")

    db = out / "auction.db"
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(private_dir(db), ignore_errors=True)
    shutil.rmtree(out / "proofs", ignore_errors=True)

    echo(f"[2/5] {rounds} sealed-bid rounds with simulated truthful bidders -> {db}")
    with start_or_resume(db, circuit_dir, rounds=rounds, audits=audits, penalty=None, mode="zk", seed=seed) as run:
        ann = run.auctioneer.announcement()
        echo(f"      {ann.n} bidders registered (each signed the announcement and committed to an audit seed)")
        played, secs = play(run, every=max(1, rounds // 4), echo=echo)
        timings["rounds_s"] = secs
        st = read_state(run.ledger)
        revenue = sum(sum(st.outcomes[r].data["payment"]) for r in range(1, rounds + 1))
        present = sum(sum(st.outcomes[r].data["participants"]) for r in range(1, rounds + 1))
        echo(f"      {played} rounds in {secs:.1f} s ({played / secs:.1f} rounds/s); revenue {revenue:.3f} "
             f"({revenue / rounds:.4f} per round); {present} bids")

        echo(f"[3/5] audit draw: bidders reveal their seeds (each with the checkpoint it kept), k={audits}")
        t = time.perf_counter()
        draw = run.reveal()
        timings["select_s"] = time.perf_counter() - t
        echo(f"      audited rounds {draw.rounds} (SHA3 of the log id and the {len(draw.revealed)} seeds committed at registration)")

        echo("[4/5] the auctioneer proves the audited rounds in zero knowledge")
        prove_times: list[float] = []
        run.answer_audit(draw.rounds, on_round=lambda r, s: (prove_times.append(s), echo(f"      round {r}: proved in {s:.1f} s")),
                         workers=workers, ray_address=ray_address)
        timings["prove_s_mean"] = sum(prove_times) / max(1, len(prove_times))
        t = time.perf_counter()
        report = run.verdict()
        timings["audit_check_s"] = time.perf_counter() - t
        print_report(report, echo)

        echo("[5/5] each bidder verifies each proof file: public artefacts, the bundle's log proof, its kept checkpoint")
        public = copy_public_artefacts(circuit, out / "public")
        (out / "proofs").mkdir(exist_ok=True)
        st = read_state(run.ledger)
        verified = True
        verify_times = []
        for r in draw.rounds:
            path = ProofBundle.from_dict(st.proofs[r].data).save(out / "proofs" / f"round_{r}.json")
            t = time.perf_counter()
            try:
                bundle = ProofBundle.load(path)
                verify_bundle(bundle, public, srs_path=circuit.check_srs(),
                              expected_manifest_sha256=ann.auction["manifest_sha256"])
                check_log_proof(bundle)
                for b in run.bidders:
                    b.sync()
                    check_bundle_against_ledger(bundle, run.ledger, r, kept=b.view.kept)
                verify_times.append(time.perf_counter() - t)
                echo(f"      {path}: valid ({verify_times[-1]:.2f} s)")
            except Exception as e:  # reported, not raised: the summary says what failed
                verified = False
                echo(f"      {path}: INVALID: {e}")
        timings["verify_s_mean"] = sum(verify_times) / max(1, len(verify_times))
        check = run.ledger.verify_chain()
        kept = [{"bidder": b.index, "size": b.view.kept.size, "root": b.view.kept.root, "consistency_checks": b.view.checks}
                for b in run.bidders]
        argt = argt_bound(run.setting)
        summary = {
            "auction": str(trained),
            "circuit": str(circuit_dir),
            "circuit_source": source,
            "srs": report.srs or {"source": "untrusted"},
            "logrows": circuit.logrows,
            "rounds": rounds,
            "audits": audits,
            "audited_rounds": draw.rounds,
            "rounds_per_s": played / secs,
            "revenue_per_round": revenue / rounds,
            "penalty": ann.penalty,
            "argt_bound": argt,
            "minimal_penalty": minimal_penalty(rounds, audits, argt).minimal_penalty,
            "ledger_entries": check.n_entries,
            "log_root": check.root,
            "bidder_checkpoints": kept,
            "audit_valid": report.valid,
            "verified": verified,
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
        }
    summary["timings_s"]["total_s"] = round(time.perf_counter() - t_all, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    echo("")
    echo("summary")
    echo(f"  auction             {trained} (circuit logrows {circuit.logrows}, {INSECURE.split(':')[0]})")
    echo(f"  rounds              {rounds} at {summary['rounds_per_s']:.1f} rounds/s (commit, close + checkpoint, open, "
         "canonical outcome, sign, log, checkpoint, every bidder's checks)")
    echo(f"  revenue per round   {summary['revenue_per_round']:.4f}")
    echo(f"  penalty             {ann.penalty:g} (minimal for T={rounds}, k={audits}: {summary['minimal_penalty']:g})")
    echo(f"  audited rounds      {draw.rounds}: {'all valid' if report.valid else 'FAILED'}")
    echo(f"  timings             {'compile' if source == 'compiled' else 'circuit'} {timings['compile_s']:.1f} s, rounds {timings['rounds_s']:.1f} s, "
         f"prove {timings['prove_s_mean']:.1f} s/round, verify {timings['verify_s_mean']:.2f} s/proof, "
         f"total {summary['timings_s']['total_s']:.1f} s")
    echo(f"  log                 {check.n_entries} entries, chain verified, Merkle root {check.root[:16]}...")
    for k in kept:
        echo(f"  bidder {k['bidder']} kept      checkpoint size {k['size']}, root {k['root'][:16]}... "
             f"({k['consistency_checks']} consistency checks made)")
    echo(f"  files               {out}/ (summary.json, proofs/, public/, auction.db)")
    return summary


def play(run: Any, every: int = 50, echo: Any = print, progress: bool | None = None) -> tuple[int, float]:
    """Play the run's remaining rounds. On a terminal (or with ``progress=True``) a progress bar on
    stderr shows rounds, rounds/s and revenue so far; otherwise a line every ``every`` rounds."""
    import sys

    t0 = time.perf_counter()
    total = run.auctioneer.announcement().rounds
    done = run.rounds_done()
    bar = None
    if progress if progress is not None else sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, initial=done, unit="round", desc="rounds", file=sys.stderr)
    revenue = [0.0]

    def on_round(r: int) -> None:
        if bar is not None:
            e = run.ledger.entries(kind="outcome", round=r)
            revenue[0] += sum(e[0].data["payment"]) if e else 0.0
            bar.update(1)
            bar.set_postfix(revenue=f"{revenue[0]:.3f}")
        elif r % every == 0 or r == total:
            echo(f"  round {r}/{total}  ({time.perf_counter() - t0:.1f} s)")

    try:
        played = run.play(on_round=on_round)
    finally:
        if bar is not None:
            bar.close()
    return played, time.perf_counter() - t0


def print_report(report: Any, echo: Any = print) -> None:
    for v in report.verdicts:
        echo(f"  {'ok  ' if v.valid else 'FAIL'} {v.reason}")
    for b in report.breaches:
        echo(f"  FAIL {b}")
    if report.srs:
        label = "trusted (" + report.srs["source"] + ")" if report.srs["trusted"] else "UNTRUSTED (not pinned, not a known ceremony)"
        echo(f"  SRS {report.srs['sha256'][:16]}...: {label}")
    if report.status == "valid":
        echo(f"audit passed: {report.reason}; no penalty")
    elif report.status == "pending":
        echo(f"audit pending: {report.reason}")
    elif report.status == "unconfirmed":
        echo(f"audit UNCONFIRMED: {report.reason}; no penalty on this log alone")
    else:
        echo(f"AUDIT FAILED: {report.reason}; penalty due {report.penalty_due:g}")
