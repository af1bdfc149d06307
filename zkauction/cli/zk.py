"""zk commands: ``compile`` (trained auction -> ezkl circuit) and ``verify`` (a proof bundle).

Each calls the library function a Python user would call: :func:`zkauction.zk.compile.compile_auction`
and :func:`zkauction.zk.bundle.verify_bundle` (plus :func:`zkauction.protocol.bundle_log.check_log_proof` and, with ``--db``,
:func:`zkauction.protocol.bundle_log.check_bundle_against_ledger`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    @app.command("compile")
    def compile_cmd(
        trained: Path = typer.Argument(..., help="trained auction folder, e.g. trained/2x2_scenario1"),
        out: Path = typer.Option(..., "--out", help="circuit folder to write, e.g. circuits/2x2_scenario1"),
        srs: Optional[Path] = typer.Option(None, "--srs", help="SRS file from a public ceremony (production)"),
        dev_srs: bool = typer.Option(False, "--dev-srs", help="generate an INSECURE SRS locally (testing only)"),
        input_scale: Optional[int] = typer.Option(None, "--input-scale", min=0, max=24, help="fixed-point input scale S (bids on a 2^-S grid)"),
        max_logrows: Optional[int] = typer.Option(None, "--max-logrows", min=1, help="cap the circuit size (lookup tables split into columns)"),
        lookup_margin: Optional[int] = typer.Option(None, "--lookup-margin", help="lookup safety margin for calibration (>= 2)"),
        samples: Optional[int] = typer.Option(None, "--calibration-samples", min=1, help="tweaked-data frames used for calibration"),
        keep_pk: bool = typer.Option(True, "--keep-pk/--no-keep-pk", help="keep the proving key (git-ignored) in OUT"),
        require_fidelity: bool = typer.Option(True, "--require-fidelity/--no-require-fidelity",
                                              help="fail (exit 1) when the circuit does not compute the PyTorch net's "
                                                   "outcomes on held-out profiles (the fidelity check)"),
        force: bool = typer.Option(False, "--force", help="replace the compiled circuit already in OUT"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="print each step and its time"),
        as_json: bool = typer.Option(False, "--json", help="print the compiled circuit's figures as one JSON object"),
    ) -> None:
        """Compile TRAINED into an ezkl circuit: ONNX, settings, calibration, keys and manifest.json."""
        from zkauction.errors import ZkAuctionError
        from zkauction.zk.circuit import MANIFEST_FILE, CircuitError, INSECURE_SRS_NOTE, RoundInputError
        from zkauction.zk.commitments import CommitmentError
        from zkauction.zk.compile import compile_auction
        from zkauction.zk.export import ExportError

        if (srs is None) == (not dev_srs):
            _fail("give exactly one of --srs PATH (a ceremony SRS) and --dev-srs (insecure, local)")
        if out.exists() and not out.is_dir():
            raise typer.BadParameter(f"{out} is a file, expected a folder (e.g. circuits/NAME)", param_hint="'--out'")
        if (out / MANIFEST_FILE).is_file() and not force:
            raise typer.BadParameter(f"{out} already holds a compiled circuit ({MANIFEST_FILE}); pass --force to "
                                     "replace it (proofs made with it will no longer verify against it)",
                                     param_hint="'--out'")
        kw: dict[str, object] = {}
        for key, value in (("input_scale", input_scale), ("max_logrows", max_logrows),
                           ("lookup_safety_margin", lookup_margin), ("calibration_samples", samples)):
            if value is not None:
                kw[key] = value
        if dev_srs:
            typer.echo(f"WARNING: {INSECURE_SRS_NOTE}", err=True)
        show_steps = progress and not as_json  # the steps print on stdout, which --json keeps for the JSON
        if show_steps:
            typer.echo(f"compiling {trained} -> {out}")
        try:
            circuit = compile_auction(trained, out, srs_path=srs, dev_srs=dev_srs, progress=show_steps, keep_pk=keep_pk,
                                     require_fidelity=require_fidelity, **kw)
        except (CircuitError, ExportError, CommitmentError, RoundInputError) as e:
            raise ZkAuctionError(str(e)) from e  # the zk errors that are not yet ZkAuctionErrors themselves
        man = circuit.manifest
        fid = man.get("fidelity", {})
        if as_json:
            typer.echo(json.dumps({
                "circuit": str(out), "n": circuit.n, "m": circuit.m, "logrows": circuit.logrows,
                "input_scale": circuit.input_scale, "output_scales": circuit.output_scales, "fidelity": fid,
                "manifest": str(circuit.manifest_path), "manifest_sha256": circuit.manifest_sha256(),
                "srs": man["srs"]["path"], "insecure_srs": circuit.srs_insecure,
            }, indent=2))
            return
        typer.echo(
            f"compiled: n={circuit.n} m={circuit.m} logrows={circuit.logrows} input scale={circuit.input_scale} "
            f"output scales={circuit.output_scales}"
        )
        if fid:
            verdict = "passed" if fid.get("passed", True) else "FAILED (kept: --no-require-fidelity)"
            sweep = fid.get("sweep", {})
            swept = (f"; {sweep['profiles']} edge, tie and random profiles through the exact evaluator: max |error| "
                     f"{max(sweep['allocation_max_abs_error'], sweep['payment_max_abs_error']):.2e}") if "profiles" in sweep else ""
            typer.echo(f"fidelity check {verdict}: vs the PyTorch net on {fid['samples']} profiles, max |error| "
                       f"{fid['max_abs_error']:.2e} (allocation {fid.get('allocation_max_abs_error', fid['max_abs_error']):.2e}){swept}")
        typer.echo(f"manifest {circuit.manifest_path} sha256 {circuit.manifest_sha256()}")
        typer.echo(f"SRS {man['srs']['path']} ({'INSECURE dev SRS' if circuit.srs_insecure else 'from --srs'})")

    @app.command("verify")
    def verify_cmd(
        bundle: Path = typer.Argument(..., help="proof bundle (JSON) written by `zkauction prove`"),
        circuit: Optional[Path] = typer.Option(
            None, "--circuit", help="circuit folder, or a folder with its manifest.json, settings.json and vk.key "
            "(default: the folder under ./circuits or the package's circuits/ whose manifest the bundle names)"),
        srs: Optional[Path] = typer.Option(None, "--srs", help="SRS file (default: the path in the manifest)"),
        db: Optional[str] = typer.Option(None, "--db", help="also check the bundle against this auction log "
                                         "(an SQLite file or a postgresql:// URL)"),
        round: Optional[int] = typer.Option(None, "--round", min=0, max=2**63 - 1, help="round the bundle must be for"),
        since: Optional[Path] = typer.Option(None, "--since", help="with --db: a checkpoint you kept; the log must extend it"),
        trusted_srs: list[str] = typer.Option([], "--trusted-srs", help="SHA-256 of a ceremony SRS to trust (repeatable)"),
        as_json: bool = typer.Option(False, "--json", help="print the verified outcome as JSON"),
    ) -> None:
        """Verify a proof bundle: manifest and vk hashes, the ezkl proof, commitments, outcome, and the
        log proof that binds it to its round (or, with --db, the log itself, at the same cost at any
        length). Exit 0 only if every check passes; 1 with the failed check; 2 for a usage error."""
        from zkauction.protocol.storage_pg import is_postgres_url, redact_url
        from zkauction.zk.bundle import BundleError, ProofBundle, VerificationError, load_public_circuit, verify_bundle
        from zkauction.zk.srs import check_pins

        try:
            b = ProofBundle.load(bundle)
            pins = check_pins(trusted_srs)
        except (BundleError, ValueError) as e:
            _fail(str(e))
        if circuit is not None and not circuit.is_dir():
            _fail(f"--circuit {circuit}: {'not a folder' if circuit.exists() else 'no such folder'} (expected a circuit "
                  "folder with manifest.json, settings.json and vk.key)")
        if circuit is None:
            circuit = find_circuit(b.manifest_sha256, b.circuit_name)
            if circuit is None:
                _fail(f"no --circuit given and no circuit folder with manifest {b.manifest_sha256[:16]}... was found "
                      "under ./circuits or the package's circuits/; pass --circuit DIR")
        if db is not None and not is_postgres_url(db) and not Path(db).is_file():
            _fail(f"--db {db}: no such log file")
        if since is not None and db is None:
            _fail("--since needs --db (the log to check against the kept checkpoint)")
        if round is not None and b.log is None and db is None:
            _fail("--round needs a bundle with a log proof or --db: without either, nothing binds the round number")
        binding = None
        try:
            circ = load_public_circuit(circuit, srs)  # the verifier's copy: its manifest states the terms
            if b.log is not None:
                from zkauction.protocol.bundle_log import check_announced_terms, check_log_proof

                binding = check_log_proof(b)
                if round is not None and binding.round != round:
                    raise VerificationError("log", f"the bundle is for round {binding.round}, not round {round}")
                check_announced_terms(binding.announcement, circ, "log")
            expected = binding.announcement.auction.get("manifest_sha256") if binding else None
            result = verify_bundle(b, circ, expected_manifest_sha256=expected, trusted_srs=pins)
            if db is not None:
                check_against_log(b, db, round, since, circ)
        except VerificationError as e:
            typer.echo(f"INVALID: {e}", err=True)
            raise typer.Exit(1)
        out = {"valid": True, "round": binding.round if binding else None, "bound_to_log": binding is not None,
               "log_id": binding.log_id if binding else None,
               "checkpoint": binding.checkpoint.to_dict() if binding else None,
               "commitments": list(result.commitments), "srs": result.srs.to_dict(), **result.outcome.to_dict()}
        if as_json:
            typer.echo(json.dumps(out))
            return
        if binding:
            typer.echo(f"valid: round {binding.round} of log {binding.log_id[:16]}... (checkpoint size "
                       f"{binding.checkpoint.size}, signed by the announced auctioneer), circuit {result.circuit_name or circuit}")
            if db is None:
                typer.echo("  NOT CHECKED AGAINST A LOG YOU HOLD: an auctioneer that signs two histories of one log "
                           "(a fork) can hand out a bundle of either; check it with --db LOG (and --since KEPT.json)")
            typer.echo("  checked: the proof against the round's logged outcome and its commitments; the round's "
                       "other entries (its close, rejections) and the audit: `zkauction audit` or `log verify` on the log")
        else:
            typer.echo(f"valid proof of an outcome of circuit {result.circuit_name or circuit}")
            typer.echo("  NOT BOUND: the bundle carries no log proof, so its round number "
                       f"({b.round_id!r}) and circuit name are its own claims; check it with --db or a bundle from `zkauction prove`")
        typer.echo(f"  allocation {[list(r) for r in result.outcome.allocation]}")
        typer.echo(f"  payment    {list(result.outcome.payment)} (revenue {result.outcome.revenue:g})")
        if db is not None:
            typer.echo(f"  matches the log {redact_url(db) if is_postgres_url(db) else db}"
                       + (f" and extends the checkpoint {since}" if since else ""))
        typer.echo(f"  {result.srs}")


def find_circuit(manifest_sha256: str, name: str) -> Path | None:
    """The circuit folder whose manifest has this SHA-256: ./circuits/<name>, the package's
    circuits/<name>, then any folder under either."""
    from zkauction.zk.circuit import MANIFEST_FILE, sha256_file

    roots = [Path.cwd() / "circuits", Path(__file__).resolve().parents[2] / "circuits"]
    candidates = [r / name for r in roots if name] + [d for r in roots if r.is_dir() for d in sorted(r.iterdir())]
    for d in candidates:
        mf = d / MANIFEST_FILE
        if mf.is_file() and sha256_file(mf) == manifest_sha256:
            return d
    return None


def check_against_log(bundle: object, db: str | Path, round: int | None, since: Path | None, circuit: object = None) -> None:
    """The bundle against the log database (read-only): inclusion and consistency, O(log n)."""
    from zkauction.protocol.bundle_log import KeptNotEvidence, check_bundle_against_ledger
    from zkauction.protocol.checkpoint import SignedCheckpoint
    from zkauction.protocol.log import Ledger, LedgerError
    from zkauction.zk.bundle import VerificationError

    try:
        kept = SignedCheckpoint.load(since) if since is not None else None
        ledger = Ledger.open(db, writer=False)
    except LedgerError as e:
        _fail(f"{e}")
    try:
        check_bundle_against_ledger(bundle, ledger, round, kept=kept, circuit=circuit)
    except KeptNotEvidence as e:
        _fail(f"--since {since}: {e}")
    except LedgerError as e:
        raise VerificationError("ledger", str(e)) from None
    finally:
        ledger.close()
