"""Compiling a trained auction into an ezkl circuit: ONNX export, settings, calibration on the
setting's tweaked data, compile, SRS (ceremony file or an insecure dev SRS), keys and the fidelity
check (docs/design.md, "ONNX and circuit contract")."""

from __future__ import annotations
import contextlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator
import zkauction.zk.commitments as commitments
from zkauction.zk.commitments import snap_bid
import ezkl

if TYPE_CHECKING:
    import torch

from zkauction.zk.circuit import ARTEFACTS, CIRCUIT_MASK_LOGIT, COMPILED_FILE, COMPILE_LOG_FILE, Circuit, CircuitError, DEFAULT_CALIBRATION_SAMPLES, DEFAULT_INPUT_SCALE, DEFAULT_LOOKUP_SAFETY_MARGIN, DEV_SRS_FILE, INSECURE_SRS_NOTE, LOGROWS_HEADROOM, MANIFEST_FILE, MANIFEST_FORMAT, MAX_TABLE_COLUMNS, MIN_LOGROWS, ONNX_FILE, PK_FILE, SETTINGS_FILE, VK_FILE, _ezkl, _quiet, _step, dev_srs_dir, ezkl_version, sha256_file
from zkauction.zk.witness import fidelity_verdict, measure_fidelity

# Profiles of the fidelity check's sweep through the exact fixed-point evaluator (edges, ties,
# absent bidders, random): seconds, beside the 64 ezkl witnesses.
FIDELITY_SWEEP_PROFILES = 2000

@contextlib.contextmanager
def circuit_mask_logit(net: "torch.nn.Module", value: float = CIRCUIT_MASK_LOGIT) -> Iterator[None]:
    """Temporarily set the absent-bidder logit offset (``mask_logit``, read at trace time) of every
    module of ``net`` that has one, for export; nets without one are unchanged."""
    modules = [mod for mod in net.modules() if hasattr(mod, "mask_logit")]
    old = [mod.mask_logit for mod in modules]
    for mod in modules:
        mod.mask_logit = value
    try:
        yield
    finally:
        for mod, o in zip(modules, old):
            mod.mask_logit = o


def fidelity_sweep(circuit: Circuit, net: Any, k: int, allocation: float, payment: float) -> dict[str, Any]:
    """The fidelity check's comparison (tolerances ``allocation``, ``payment``) on ``k`` profiles
    that exercise the fixed point (the support's edges, absent bidders, equal bids, profiles on
    either side of an outcome change, random ones), through the exact fixed-point evaluator (bit
    for bit ezkl's witness, checked against it on probe rounds). Circuits it cannot reproduce are reported as skipped, not failed."""
    import numpy as np
    import torch

    from zkauction.zk.fixedpoint import FixedPointEvaluator, UnsupportedCircuit

    try:
        ev = FixedPointEvaluator.from_circuit(circuit)
    except UnsupportedCircuit as e:
        return {"skipped": str(e)}
    bids = ev.differential_profiles(circuit.support, k, seed=1)
    res = ev.evaluate(bids)
    ok = res.valid
    with torch.no_grad():
        a, p = net(torch.tensor(bids[ok], dtype=torch.float32))
    da = np.abs(res.allocation[ok] - a.numpy()).reshape(int(ok.sum()), -1).max(axis=1, initial=0.0)
    dp = np.abs(res.payment[ok] - p.numpy()).max(axis=1, initial=0.0)
    return {"profiles": int(ok.sum()), "left_to_ezkl": int((~ok).sum()),
            **fidelity_verdict(da.tolist(), dp.tolist(), allocation, payment)}


def exact_score_multiplier(net: Any, input_scale: int, param_scale: int) -> int | None:
    """The scale rebase multiplier that lets an affine maximizer's circuit compute its scores
    exactly, or None (ezkl's calibration picks) for other nets.

    An AMA's eval-mode constants lie on the 2^-grid_scale grid (zkauction.learn.ama), so with
    ``param_scale >= grid_scale`` every bid times constant is an exact integer at scale
    ``input_scale + param_scale``. ezkl divides (rounding) any result above
    ``max(input, param) * multiplier`` back down, so the multiplier must leave that scale alone;
    when every value constant is an integer (0/1 menus, weights 1) the division is exact anyway and
    1 suffices. Then the circuit's argmax and its tie-break see the float net's scores exactly and
    pick the same menu entry; only a payment's 1/w_i is rounded (at scale 2 * param)."""
    if getattr(net, "kind", None) != "ama" or net.grid_scale > param_scale:
        # Constants finer than the param scale (an AMA trained with grid_scale above the circuit's
        # scale) are re-quantised by ezkl: no exactness to keep, the fidelity check's tolerance applies.
        return None
    if net.integer_scores():
        return 1
    return max(1, math.ceil((input_scale + param_scale) / max(input_scale, param_scale)))


def fit_logrows(num_rows: int, decomp_base: int, lookup_size: int = 0) -> int:
    """The smallest logrows holding ``num_rows`` rows and the range-check table, with room for
    ezkl's blinding rows, and splitting each lookup table over at most MAX_TABLE_COLUMNS columns."""
    need = max(num_rows, decomp_base, lookup_size / MAX_TABLE_COLUMNS) + LOGROWS_HEADROOM
    return max(MIN_LOGROWS, math.ceil(math.log2(need)))


def default_decomp_legs(input_scale: int) -> int:
    """Legs of base 2^S covering values up to 2^(2S + 10) (see compile_auction)."""
    return max(2, math.ceil((2 * input_scale + 10) / max(1, input_scale)))


def get_dev_srs(logrows: int, progress: bool = False) -> Path:
    """A locally generated (INSECURE) SRS for ``logrows``, cached under ``$EZKL_REPO_PATH/dev-srs``."""
    d = dev_srs_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"kzg{logrows}.srs"
    if not path.is_file():
        with _step(f"gen_srs (dev, INSECURE, logrows {logrows})", progress):
            tmp = d / f".kzg{logrows}.{os.getpid()}.tmp"
            _ezkl(ezkl.gen_srs, str(tmp), logrows)
            # Publish without replacing: a concurrent compile may already have set up keys with
            # another process's SRS at this path, and must keep finding that one.
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
    return path

def _calibration_json(net: Any, k: int, seed: int, scale: int) -> dict[str, Any]:
    """Tweaked-data samples (docs/design.md: calibrate on the setting's tweaked data), as float rows."""
    from zkauction.learn.data import sample_tweaked

    data = sample_tweaked(net.setting, net.participation, k, seed).values
    rows: list[list[float]] = [[] for _ in range(net.setting.n)]
    # Include the corners of the support so lookups cover extreme bids too.
    frames = [data[i] for i in range(k)] + [net.setting.high, net.setting.low]
    for frame in frames:
        for i in range(net.setting.n):
            rows[i].extend([snap_bid(float(b), scale) for b in frame[i].tolist()] + [0.0])
    return {"input_data": rows}


def compile_auction(
    trained_dir: str | Path,
    out_dir: str | Path,
    *,
    srs_path: str | Path | None = None,
    dev_srs: bool = False,
    input_scale: int = DEFAULT_INPUT_SCALE,
    param_scale: int | None = None,
    calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
    lookup_safety_margin: int = DEFAULT_LOOKUP_SAFETY_MARGIN,
    max_logrows: int | None = None,
    decomp_base: int | None = None,
    decomp_legs: int | None = None,
    mask_logit: float = CIRCUIT_MASK_LOGIT,
    seed: int = 0,
    fidelity_samples: int = 64,
    shrink_logrows: bool = True,
    logrows_override: int | None = None,
    keep_pk: bool = True,
    progress: bool = False,
    require_fidelity: bool = True,
) -> "Circuit":
    """Compile ``trained/<name>`` into ``out_dir``: ONNX, settings, calibration, circuit, SRS, keys, manifest.

    Exactly one of ``srs_path`` (a ceremony SRS file) and ``dev_srs`` (generate an INSECURE local one)
    must be given. ``input_scale`` is pinned during calibration because commitments depend on it;
    calibration runs on ``calibration_samples`` frames of the setting's tweaked data with
    ``lookup_safety_margin`` (at least 2). ``max_logrows``, ``decomp_base``/``decomp_legs`` trade
    lookup table size against rows; with ``shrink_logrows`` (the default) logrows is lowered after
    calibration to the smallest that holds the layout, lookup tables then span several columns.
    ``fidelity_samples`` held-out profiles measure the circuit's
    error against the PyTorch net (manifest "fidelity", :func:`zkauction.zk.witness.measure_fidelity`);
    with ``require_fidelity`` a failed check raises :class:`CircuitError` once everything is written
    (the folder stays for inspection). The proving key is kept in ``out_dir/pk.key`` (git-ignored) if
    ``keep_pk``.
    """
    from zkauction.learn.checkpoint import load_auction
    from zkauction.zk.export import export_onnx

    if (srs_path is None) == (not dev_srs):
        raise CircuitError("give exactly one of --srs PATH (a ceremony SRS) and --dev-srs (insecure, local)")
    if lookup_safety_margin < 2:
        raise CircuitError(f"lookup safety margin must be at least 2, got {lookup_safety_margin}")
    if srs_path is not None and not Path(srs_path).is_file():
        raise CircuitError(f"SRS file not found: {srs_path}")
    commitments._check_scale(input_scale)
    trained_dir, out = Path(trained_dir), Path(out_dir)
    net = load_auction(trained_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (MANIFEST_FILE, PK_FILE):
        (out / stale).unlink(missing_ok=True)
    param_scale = input_scale if param_scale is None else param_scale
    net.eval()
    rebase_multiplier = exact_score_multiplier(net, input_scale, param_scale)
    timings: dict[str, float] = {}

    def timed(name: str, label: str) -> Any:
        @contextlib.contextmanager
        def cm() -> Iterator[None]:
            t = time.perf_counter()
            with _step(label, progress):
                yield
            timings[name] = round(time.perf_counter() - t, 3)

        return cm()

    with timed("export", "export ONNX"), circuit_mask_logit(net, mask_logit):
        export_onnx(net, out / ONNX_FILE)
    run_args = ezkl.PyRunArgs()
    run_args.input_visibility = "hashed"
    run_args.param_visibility = "fixed"
    run_args.output_visibility = "public"
    run_args.input_scale = input_scale
    run_args.param_scale = param_scale
    # The salt slot holds a uniform field element, far outside any range check's table; the bids are
    # bound by the commitments (each bidder checks its own), the outputs are public.
    run_args.ignore_range_check_inputs_outputs = True
    # Comparisons (max, ReLU, presence) decompose values into legs of base decomp_base, range
    # checked with a table of decomp_base rows: ezkl's default 2^14 alone forces logrows 15. A base
    # of 2^S with enough legs for values at scale 2S (products before rescaling) plus 10 bits of
    # magnitude keeps the table at the input scale's size.
    run_args.decomp_base = decomp_base if decomp_base is not None else 2**input_scale
    run_args.decomp_legs = decomp_legs if decomp_legs is not None else default_decomp_legs(input_scale)
    settings = out / SETTINGS_FILE
    cal = out / "calibration.json"
    with timed("calibrate", "gen_settings + calibrate_settings"):
        _ezkl(ezkl.gen_settings, str(out / ONNX_FILE), str(settings), py_run_args=run_args)
        cal.write_text(json.dumps(_calibration_json(net, calibration_samples, seed, input_scale)))
        kw: dict[str, Any] = {} if max_logrows is None else {"max_logrows": max_logrows}
        if rebase_multiplier is not None:
            kw["scale_rebase_multiplier"] = [rebase_multiplier]
        with _quiet():
            _ezkl(
                ezkl.calibrate_settings, str(cal), str(out / ONNX_FILE), str(settings), "resources",
                lookup_safety_margin=lookup_safety_margin, scales=[input_scale], **kw,
            )
        cal.unlink()
    st = json.loads(settings.read_text())
    if st["run_args"]["input_scale"] != input_scale:
        raise CircuitError(f"calibration changed the input scale to {st['run_args']['input_scale']}")
    if rebase_multiplier is not None and int(st["run_args"]["scale_rebase_multiplier"]) != rebase_multiplier:
        raise CircuitError(f"calibration changed the scale rebase multiplier to {st['run_args']['scale_rebase_multiplier']}")
    logrows = int(st["run_args"]["logrows"])
    if logrows_override is not None:
        logrows = int(logrows_override)
        st["run_args"]["logrows"] = logrows
        settings.write_text(json.dumps(st))
    elif shrink_logrows:
        # ezkl's calibration sizes the circuit so each lookup table fits one column; splitting the
        # tables over several columns at the smallest logrows that holds the layout proves several
        # times faster (fewer rows to commit to and FFT over).
        lo, hi = st["run_args"]["lookup_range"]
        fit = fit_logrows(int(st["num_rows"]), int(st["run_args"]["decomp_base"]), int(hi) - int(lo) + 1)
        if fit < logrows:
            logrows = fit
            st["run_args"]["logrows"] = logrows
            settings.write_text(json.dumps(st))
    with timed("compile", "compile_circuit"):
        _ezkl(ezkl.compile_circuit, str(out / ONNX_FILE), str(out / COMPILED_FILE), str(settings))
    if dev_srs:
        srs = out / DEV_SRS_FILE
        shutil.copyfile(get_dev_srs(logrows, progress), srs)
        srs_info = {"provenance": "dev", "insecure": True, "note": INSECURE_SRS_NOTE}
        srs_recorded = DEV_SRS_FILE  # relative to the circuit folder: travels with it
    else:
        srs = Path(srs_path).resolve()  # type: ignore[arg-type]
        srs_info = {"provenance": "file", "insecure": False, "note": "SRS file passed with --srs"}
        srs_recorded = str(srs)
    with timed("setup", "setup (verifying and proving keys)"):
        with _quiet():
            _ezkl(ezkl.setup, str(out / COMPILED_FILE), str(out / VK_FILE), str(out / PK_FILE), srs_path=str(srs))
    output_scales = st.get("model_output_scales", [input_scale, input_scale])
    manifest = {
        "format": MANIFEST_FORMAT,
        "ezkl_version": ezkl_version(),
        "name": out.name,
        "n": net.setting.n,
        "m": net.setting.m,
        "setting": net.setting.to_dict(),
        "participation": net.participation.to_dict(),
        "net": {"kind": net.kind, "hyperparameters": net.hyperparameters(),
                "weights_sha256": sha256_file(trained_dir / "weights.pt")},
        "input_scale": input_scale,
        "param_scale": int(st["run_args"]["param_scale"]),
        "output_scales": {"allocation": int(output_scales[0]), "payment": int(output_scales[1])},
        "logrows": logrows,
        "run_args": {k: st["run_args"].get(k) for k in (
            "input_visibility", "param_visibility", "output_visibility", "lookup_range", "decomp_base", "decomp_legs",
            "scale_rebase_multiplier", "num_inner_cols")},
        "mask_logit": mask_logit,
        "calibration": {"samples": calibration_samples, "seed": seed, "lookup_safety_margin": lookup_safety_margin,
                        "max_logrows": max_logrows, "target": "resources"},
        "artefacts": {name: sha256_file(out / name) for name in ARTEFACTS},
        "srs": {"path": srs_recorded, "sha256": sha256_file(srs), "logrows": logrows, **srs_info},
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if fidelity_samples > 0:
        # The calibrated error: how far the fixed-point circuit is from the PyTorch net on fresh
        # tweaked data (a different seed from calibration). Recorded so tests and users can bound it.
        from zkauction.learn.data import sample_tweaked

        with timed("fidelity", f"fidelity check ({fidelity_samples} witnesses, {FIDELITY_SWEEP_PROFILES} exact-evaluator profiles)"):
            held_out = sample_tweaked(net.setting, net.participation, fidelity_samples, seed + 1).values
            compiled = Circuit(out, manifest)
            fid = measure_fidelity(compiled, net, held_out, exact_allocation=rebase_multiplier is not None)
            fid["sweep"] = fidelity_sweep(compiled, net, FIDELITY_SWEEP_PROFILES, **fid["tolerance"])
            fid["passed"] = fid["passed"] and fid["sweep"].get("passed", True)
            manifest["fidelity"] = fid
        (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    # Timings and paths go beside the manifest, not in it: recompiling the same auction with the
    # same SRS reproduces the manifest (and its hash) exactly.
    (out / COMPILE_LOG_FILE).write_text(json.dumps({
        "trained_dir": str(trained_dir), "timings_s": timings, "ezkl_version": ezkl_version(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2, sort_keys=True) + "\n")
    if not keep_pk:
        (out / PK_FILE).unlink(missing_ok=True)
    fid = manifest.get("fidelity")
    if require_fidelity and fid is not None and not fid["passed"]:
        sweep = fid.get("sweep", {})
        swept = (f"; on {sweep['profiles']} edge, tie and random profiles (exact evaluator) allocations differ by up to "
                 f"{sweep['allocation_max_abs_error']:.3g} ({sweep['allocation_mismatches']} profiles) and payments by up to "
                 f"{sweep['payment_max_abs_error']:.3g}") if "profiles" in sweep else ""
        raise CircuitError(
            f"fidelity check failed{swept}: on {fid['samples']} held-out profiles the circuit's allocation differs from "
            f"the PyTorch net's by up to {fid['allocation_max_abs_error']:.3g} ({fid['allocation_mismatches']} profiles "
            f"beyond {fid['tolerance']['allocation']:.3g}) and its payments by up to {fid['payment_max_abs_error']:.3g} "
            f"(tolerance {fid['tolerance']['payment']:.3g}); the circuit in {out} is not the net. A larger "
            "--input-scale usually helps; --no-require-fidelity keeps such a circuit")
    return Circuit.load(out)
