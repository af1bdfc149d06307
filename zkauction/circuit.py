"""ezkl circuits of auctions: compile, canonical outcome, prove (shared/DESIGN.md, "ONNX and circuit
contract").

Each step is one ezkl call with files in and files out, named as ezkl names them::

    export_onnx -> gen_settings -> calibrate_settings -> compile_circuit -> gen_srs/--srs -> setup
    gen_witness (canonical outcome) -> prove          (verify: zkauction.bundle.verify_bundle)

A compiled circuit is a folder ``circuits/<name>/`` holding ``model.onnx``, ``settings.json``,
``model.compiled``, ``vk.key`` and ``manifest.json`` (sha256 of each artefact, ezkl version, n, m,
scales, logrows, SRS provenance). The proving key ``pk.key`` is regenerated on demand and never
committed. A ceremony SRS lives outside the folder (``--srs PATH``, recorded by absolute path); a
dev SRS (generated once per logrows under ``$EZKL_REPO_PATH/dev-srs/``) is copied into the folder
as ``dev.srs`` and recorded by that relative path, because no other machine can regenerate the same
one: without it the folder could neither prove nor verify on a fresh clone. Either way the SRS is
identified by its sha256. An SRS for more rows than the
circuit's logrows also works (ezkl reduces it). Compile timings go to ``compile_log.json``.

Run arguments: input_visibility "hashed" (public instance i is bidder i's commitment, see
:mod:`zkauction.commitments`), param_visibility "fixed" (the weights are baked into the verifying key,
which thus commits to the announced auction), output_visibility "public" (the outcome).

Public API:

- :func:`compile_auction` ``(trained_dir, out_dir, *, srs_path=None, dev_srs=False, input_scale=12,
  ...) -> Circuit``
- :class:`Circuit` (``Circuit.load(dir)``; ``.manifest``, ``.n``, ``.m``, ``.input_scale``,
  ``.output_scales``, ``.logrows``, ``.srs_insecure``, artefact paths, ``.manifest_sha256()``,
  ``.vk_sha256()``)
- :class:`Outcome` (allocation [n][m], payment [n], exact dyadic floats)
- :func:`check_round_input` ``(circuit, bids, salts) -> (bids, salts)`` validated and snapped, raising
  :class:`RoundInputError` before any proving
- :func:`canonical_outcome` ``(circuit, bids, salts) -> Outcome``: the circuit's fixed-point outputs
- :func:`evaluate_round` ``(circuit, bids, salts) -> (instances, Outcome)``: one witness, giving the
  hashed-input instances (the commitments) too
- :func:`round_commitments` ``(circuit, bids, salts) -> list[str]``
- :func:`copy_public_artefacts` ``(circuit, dest)``: what a bidder needs to verify
- :func:`prove_round` ``(circuit, bids, salts, *, round_id=None) -> ProofBundle``
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import zkauction.commitments as commitments  # sets EZKL_REPO_PATH before ezkl is imported
from zkauction.commitments import CommitmentError, check_salt, snap_bid

import ezkl  # noqa: E402  (after zkauction.commitments set EZKL_REPO_PATH)

if TYPE_CHECKING:
    import torch

    from zkauction.bundle import ProofBundle

MANIFEST_FORMAT = "zkauction-circuit/1"
MANIFEST_FILE = "manifest.json"
ONNX_FILE = "model.onnx"
SETTINGS_FILE = "settings.json"
COMPILED_FILE = "model.compiled"
VK_FILE = "vk.key"
PK_FILE = "pk.key"
DEV_SRS_FILE = "dev.srs"
COMPILE_LOG_FILE = "compile_log.json"
ARTEFACTS = (ONNX_FILE, SETTINGS_FILE, COMPILED_FILE, VK_FILE)

DEFAULT_INPUT_SCALE = 10
DEFAULT_CALIBRATION_SAMPLES = 200
DEFAULT_LOOKUP_SAFETY_MARGIN = 2
# Logit offset that removes absent bidders from the allocation softmax inside circuits. The nets use
# 1e4, which makes ezkl's exp lookup table span 1e4 * 2^S entries (logrows 25). exp(-x) is 0 on the
# 2^-S grid once x > (S + 1) ln 2 (about 7.6 at S = 10), so a small offset is exact in fixed point as
# long as an absent bidder's logit is not far above the others'; the differential test against the
# PyTorch net checks it.
CIRCUIT_MASK_LOGIT = 12.0
MIN_LOGROWS = 11
LOGROWS_HEADROOM = 64  # rows reserved for blinding and padding on top of the layout
MAX_TABLE_COLUMNS = 4  # more columns per lookup table stop paying off (measured, see benchmarks/)

INSECURE_SRS_NOTE = (
    "INSECURE dev SRS generated locally with ezkl.gen_srs: whoever generated it can forge proofs. "
    "Use a public ceremony SRS (--srs PATH) in production."
)


class CircuitError(RuntimeError):
    """A circuit folder that is missing files, was tampered with, or a failed ezkl step."""


class RoundInputError(ValueError):
    """Bids or salts that cannot be proven (wrong shape, NaN, outside the support, bad salt)."""


def ezkl_version() -> str:
    return str(getattr(ezkl, "__version__", "unknown"))


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dev_srs_dir() -> Path:
    return Path(os.environ["EZKL_REPO_PATH"]) / "dev-srs"


@dataclass(frozen=True)
class Outcome:
    """A round's outcome: allocation [n][m] and payment [n], as decoded from the circuit's outputs."""

    allocation: tuple[tuple[float, ...], ...]
    payment: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"allocation": [list(r) for r in self.allocation], "payment": list(self.payment)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Outcome":
        try:
            return cls(tuple(tuple(float(x) for x in r) for r in d["allocation"]), tuple(float(x) for x in d["payment"]))
        except (KeyError, TypeError, ValueError):
            raise ValueError("an outcome must be a dict with 'allocation' [n][m] and 'payment' [n] numbers") from None

    @property
    def revenue(self) -> float:
        return float(sum(self.payment))


@dataclass(frozen=True)
class Circuit:
    """A compiled auction circuit folder and its manifest."""

    dir: Path
    manifest: dict[str, Any] = field(repr=False)
    srs_override: Path | None = None

    @classmethod
    def load(cls, path: str | Path, *, srs_path: str | Path | None = None, check_hashes: bool = True) -> "Circuit":
        """Read ``path/manifest.json``; with ``check_hashes`` every artefact must match its sha256."""
        path = Path(path)
        mf = path / MANIFEST_FILE
        if not mf.is_file():
            raise CircuitError(f"{path}: no {MANIFEST_FILE} (not a compiled circuit folder; run `zkauction compile`)")
        try:
            manifest = json.loads(mf.read_text())
        except json.JSONDecodeError as e:
            raise CircuitError(f"{mf}: not valid JSON: {e}") from None
        if manifest.get("format") != MANIFEST_FORMAT:
            raise CircuitError(f"{mf}: format {manifest.get('format')!r}, expected {MANIFEST_FORMAT!r}")
        circuit = cls(path, manifest, Path(srs_path) if srs_path is not None else None)
        if check_hashes:
            circuit.check_artefacts()
        return circuit

    # --- manifest fields -------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.manifest["n"])

    @property
    def m(self) -> int:
        return int(self.manifest["m"])

    @property
    def input_scale(self) -> int:
        return int(self.manifest["input_scale"])

    @property
    def output_scales(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.manifest["output_scales"].items()}

    @property
    def logrows(self) -> int:
        return int(self.manifest["logrows"])

    @property
    def support(self) -> list[list[list[float]]]:
        return self.manifest["setting"]["support"]

    @property
    def srs_insecure(self) -> bool:
        return bool(self.manifest["srs"]["insecure"])

    # --- paths -----------------------------------------------------------------------------------
    @property
    def onnx_path(self) -> Path:
        return self.dir / ONNX_FILE

    @property
    def settings_path(self) -> Path:
        return self.dir / SETTINGS_FILE

    @property
    def compiled_path(self) -> Path:
        return self.dir / COMPILED_FILE

    @property
    def vk_path(self) -> Path:
        return self.dir / VK_FILE

    @property
    def pk_path(self) -> Path:
        return self.dir / PK_FILE

    @property
    def manifest_path(self) -> Path:
        return self.dir / MANIFEST_FILE

    @property
    def srs_path(self) -> Path:
        """The SRS file: the override given to :meth:`load`, else the path recorded at compile time."""
        if self.srs_override is not None:
            return self.srs_override
        p = Path(self.manifest["srs"]["path"])
        return p if p.is_absolute() else self.dir / p

    def manifest_sha256(self) -> str:
        return sha256_file(self.manifest_path)

    def vk_sha256(self) -> str:
        return self.manifest["artefacts"][VK_FILE]

    def check_artefacts(self) -> None:
        """Raise :class:`CircuitError` unless every artefact exists and matches its manifest sha256."""
        for name in ARTEFACTS:
            f = self.dir / name
            if not f.is_file():
                raise CircuitError(f"{self.dir}: missing {name}")
            want = self.manifest["artefacts"].get(name)
            if sha256_file(f) != want:
                raise CircuitError(f"{f}: sha256 does not match manifest.json (modified after compiling?)")

    def check_srs(self) -> Path:
        """The SRS path, after checking it exists and has the sha256 recorded in the manifest."""
        p = self.srs_path
        if not p.is_file():
            raise CircuitError(
                f"SRS file {p} not found (the circuit was set up with SRS sha256 "
                f"{self.manifest['srs']['sha256'][:16]}...); pass --srs PATH or recompile"
            )
        if sha256_file(p) != self.manifest["srs"]["sha256"]:
            raise CircuitError(f"SRS file {p}: sha256 does not match the one in {self.manifest_path}")
        return p

    def ensure_proving_key(self, progress: bool = False) -> Path:
        """``pk.key``, regenerated with ezkl.setup if missing; the regenerated vk must match the manifest."""
        if self.pk_path.is_file():
            return self.pk_path
        srs = self.check_srs()
        with tempfile.TemporaryDirectory(dir=self.dir) as tmp:
            vk_tmp, pk_tmp = Path(tmp) / VK_FILE, Path(tmp) / PK_FILE
            with _step("setup (regenerating the proving key)", progress):
                with _quiet():
                    _ezkl(ezkl.setup, str(self.compiled_path), str(vk_tmp), str(pk_tmp), srs_path=str(srs))
            if sha256_file(vk_tmp) != self.vk_sha256():
                raise CircuitError(f"{self.dir}: regenerated verifying key differs from the manifest's (wrong SRS?)")
            pk_tmp.replace(self.pk_path)
        return self.pk_path


# --- compile ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _step(label: str, progress: bool) -> Iterator[None]:
    t = time.perf_counter()
    if progress:
        print(f"  {label} ...", end="", flush=True)
    yield
    if progress:
        print(f" {time.perf_counter() - t:.1f} s", flush=True)


def _ezkl(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an ezkl function, turning its exceptions (including Rust panics) into CircuitError."""
    try:
        result = fn(*args, **kwargs)
    except BaseException as e:  # pyo3 panics derive from BaseException
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise CircuitError(f"ezkl.{fn.__name__} failed: {str(e).strip().splitlines()[0] if str(e) else type(e).__name__}") from None
    if result is False:
        raise CircuitError(f"ezkl.{fn.__name__} failed")
    return result


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


def _input_json(bids: Sequence[Sequence[float]], salts: Sequence[str], scale: int) -> dict[str, Any]:
    """ezkl input data: per bidder, the bids as felts at the input scale and the salt as a felt.

    Felts go in unchanged (no 32-bit float parsing), so the hashed input is exactly the commitment.
    """
    return {
        "input_data": [commitments.bid_felts(row, scale) + [salt] for row, salt in zip(bids, salts)]
    }


def _calibration_json(net: Any, k: int, seed: int, scale: int) -> dict[str, Any]:
    """Tweaked-data samples (DESIGN.md: calibrate on the setting's tweaked data), as float rows."""
    from zkauction.data import sample_tweaked

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
) -> "Circuit":
    """Compile ``trained/<name>`` into ``out_dir``: ONNX, settings, calibration, circuit, SRS, keys, manifest.

    Exactly one of ``srs_path`` (a ceremony SRS file) and ``dev_srs`` (generate an INSECURE local one)
    must be given. ``input_scale`` is pinned during calibration because commitments depend on it;
    calibration runs on ``calibration_samples`` frames of the setting's tweaked data with
    ``lookup_safety_margin`` (at least 2). ``max_logrows``, ``decomp_base``/``decomp_legs`` trade
    lookup table size against rows; with ``shrink_logrows`` (the default) logrows is lowered after
    calibration to the smallest that holds the layout, lookup tables then span several columns.
    ``fidelity_samples`` held-out profiles measure the circuit's
    error against the PyTorch net (manifest "fidelity"). The proving key is kept in ``out_dir/pk.key`` (git-ignored) if
    ``keep_pk``.
    """
    from zkauction.checkpoint import load_auction
    from zkauction.export import export_onnx

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
        with _quiet():
            _ezkl(
                ezkl.calibrate_settings, str(cal), str(out / ONNX_FILE), str(settings), "resources",
                lookup_safety_margin=lookup_safety_margin, scales=[input_scale], **kw,
            )
        cal.unlink()
    st = json.loads(settings.read_text())
    if st["run_args"]["input_scale"] != input_scale:
        raise CircuitError(f"calibration changed the input scale to {st['run_args']['input_scale']}")
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
        from zkauction.data import sample_tweaked

        with timed("fidelity", f"fidelity check ({fidelity_samples} witnesses)"):
            held_out = sample_tweaked(net.setting, net.participation, fidelity_samples, seed + 1).values
            manifest["fidelity"] = measure_fidelity(Circuit(out, manifest), net, held_out)
        (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    # Timings and paths go beside the manifest, not in it: recompiling the same auction with the
    # same SRS reproduces the manifest (and its hash) exactly.
    (out / COMPILE_LOG_FILE).write_text(json.dumps({
        "trained_dir": str(trained_dir), "timings_s": timings, "ezkl_version": ezkl_version(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2, sort_keys=True) + "\n")
    if not keep_pk:
        (out / PK_FILE).unlink(missing_ok=True)
    return Circuit.load(out)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence what ezkl prints from Rust (calibration tables, "Using N columns ..."): fds 1 and 2.

    Failures still surface as exceptions, which :func:`_ezkl` turns into one-line errors.
    """
    if os.environ.get("ZKAUCTION_EZKL_VERBOSE"):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:
        yield
        return
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


# --- rounds: input checks, canonical outcome, prove ------------------------------------------------


def check_round_input(
    circuit: Circuit, bids: Sequence[Sequence[float]], salts: Sequence[str]
) -> tuple[tuple[tuple[float, ...], ...], tuple[str, ...]]:
    """Validate one round's bids [n][m] and salts [n] for ``circuit``; return them snapped/normalised.

    Raises :class:`RoundInputError` naming the problem (wrong number of bidders or items, NaN, a bid
    outside the bidder's support, a salt outside the field) before any ezkl work. A bidder whose bids
    are all zero is absent (the paper's mapping d). Bids are snapped to the input scale's grid.
    """
    n, m, S = circuit.n, circuit.m, circuit.input_scale
    try:
        rows = [list(r) for r in bids]
    except TypeError:
        raise RoundInputError(f"bids must be a list of {n} rows of {m} numbers") from None
    if len(rows) != n:
        raise RoundInputError(f"expected bids of {n} bidders, got {len(rows)}")
    if len(salts) != n:
        raise RoundInputError(f"expected {n} salts (one per bidder), got {len(salts)}")
    support = circuit.support
    snapped: list[tuple[float, ...]] = []
    for i, row in enumerate(rows):
        if len(row) != m:
            raise RoundInputError(f"bidder {i}: expected {m} bids (one per item), got {len(row)}")
        vals = []
        for j, b in enumerate(row):
            try:
                x = float(b)
            except (TypeError, ValueError):
                raise RoundInputError(f"bid of bidder {i} for item {j} is not a number: {b!r}") from None
            if not math.isfinite(x):
                raise RoundInputError(f"bid of bidder {i} for item {j} is not finite: {x}")
            vals.append(x)
        absent = all(x == 0 for x in vals)
        if not absent:
            for j, x in enumerate(vals):
                lo, hi = support[i][j]
                if not lo - 1e-9 <= x <= hi + 1e-9:
                    raise RoundInputError(
                        f"bid of bidder {i} for item {j} is {x:g}, outside its support [{lo:g}, {hi:g}]"
                    )
        try:
            snapped.append(tuple(snap_bid(x, S) for x in vals))
        except CommitmentError as e:
            raise RoundInputError(f"bidder {i}: {e}") from None
    clean_salts = []
    for i, s in enumerate(salts):
        try:
            clean_salts.append(check_salt(s))
        except CommitmentError as e:
            raise RoundInputError(f"bidder {i}: {e}") from None
    return tuple(snapped), tuple(clean_salts)


def round_commitments(circuit: Circuit, bids: Sequence[Sequence[float]], salts: Sequence[str]) -> list[str]:
    """The n commitments of a round (what each bidder publishes), after :func:`check_round_input`."""
    b, s = check_round_input(circuit, bids, salts)
    return [commitments.commit(row, salt, circuit.input_scale) for row, salt in zip(b, s)]


def _witness(circuit: Circuit, bids: Sequence[Sequence[float]], salts: Sequence[str], workdir: Path) -> tuple[Path, dict[str, Any]]:
    data = workdir / "input.json"
    data.write_text(json.dumps(_input_json(bids, salts, circuit.input_scale)))
    wit = workdir / "witness.json"
    with _quiet():
        w = _ezkl(ezkl.gen_witness, str(data), str(circuit.compiled_path), str(wit))
    # gen_witness computes past the lookup tables; the proof would then fail. Say so before proving.
    lo, hi = circuit.manifest["run_args"]["lookup_range"]
    if not (lo <= int(w["min_lookup_inputs"]) and int(w["max_lookup_inputs"]) <= hi):
        raise RoundInputError(
            f"these bids drive the circuit outside its calibrated lookup range [{lo}, {hi}] "
            f"(got [{w['min_lookup_inputs']}, {w['max_lookup_inputs']}]); recompile with a larger lookup safety margin"
        )
    return wit, w


def decode_outputs(circuit: Circuit, outputs: Sequence[Sequence[str]]) -> Outcome:
    """Decode the circuit's output felts (allocation n*m, payment n) at the manifest's output scales."""
    n, m = circuit.n, circuit.m
    sa, sp = circuit.output_scales["allocation"], circuit.output_scales["payment"]
    alloc, pay = list(outputs[0]), list(outputs[1])
    if len(alloc) != n * m or len(pay) != n:
        raise CircuitError(f"circuit outputs have {len(alloc)} + {len(pay)} values, expected {n * m} + {n}")
    a = tuple(tuple(float(ezkl.felt_to_float(alloc[i * m + j], sa)) for j in range(m)) for i in range(n))
    p = tuple(float(ezkl.felt_to_float(x, sp)) for x in pay)
    return Outcome(a, p)


def canonical_outcome(circuit: Circuit, bids: Sequence[Sequence[float]], salts: Sequence[str]) -> Outcome:
    """The circuit's fixed-point outcome on the (snapped) bids: ezkl.gen_witness outputs, decoded.

    This is what the auctioneer publishes; a proof of the round has exactly these public outputs
    (DESIGN.md: exact equality, never a tolerance). The salts do not change the outcome.
    """
    return evaluate_round(circuit, bids, salts)[1]


def evaluate_round(
    circuit: Circuit, bids: Sequence[Sequence[float]], salts: Sequence[str]
) -> tuple[list[str], Outcome]:
    """One witness generation: (the circuit's hashed-input instances, i.e. the commitments, outcome)."""
    b, s = check_round_input(circuit, bids, salts)
    with tempfile.TemporaryDirectory(prefix="zkauction-witness-") as tmp:
        _, w = _witness(circuit, b, s, Path(tmp))
    return [str(x) for x in w["processed_inputs"]["poseidon_hash"]], decode_outputs(circuit, w["outputs"])


def measure_fidelity(circuit: Circuit, net: Any, bids: Any) -> dict[str, float]:
    """Max and mean |circuit - PyTorch net| over profiles ``bids`` [K, n, m] (allocation and payment)."""
    import torch

    salts = [commitments.int_to_felt(0)] * circuit.n
    errs = []
    for frame in bids:
        rows = [[snap_bid(float(x), circuit.input_scale) for x in r] for r in frame.tolist()]
        out = canonical_outcome(circuit, rows, salts)
        with torch.no_grad():
            a, p = net(torch.tensor([rows], dtype=torch.float32))
        errs.append(max(
            (torch.tensor(out.allocation) - a[0]).abs().max().item(),
            (torch.tensor(out.payment) - p[0]).abs().max().item(),
        ))
    return {"max_abs_error": max(errs), "mean_abs_error": sum(errs) / len(errs), "samples": len(errs)}


def prove_round(
    circuit: Circuit,
    bids: Sequence[Sequence[float]],
    salts: Sequence[str],
    *,
    round_id: int | str | None = None,
    progress: bool = False,
) -> "ProofBundle":
    """Prove one round: witness, proof, and a self-contained :class:`~zkauction.bundle.ProofBundle`.

    Inputs are checked first (:class:`RoundInputError`); the proving key is regenerated if missing.
    The bundle's commitments are recomputed from bids and salts and must equal the proof's hashed
    input instances, and its outcome equals :func:`canonical_outcome`.
    """
    from zkauction.bundle import ProofBundle, proof_instances

    b, s = check_round_input(circuit, bids, salts)
    coms = [commitments.commit(row, salt, circuit.input_scale) for row, salt in zip(b, s)]
    circuit.check_artefacts()
    srs = circuit.check_srs()
    pk = circuit.ensure_proving_key(progress)
    with tempfile.TemporaryDirectory(prefix="zkauction-prove-") as tmp:
        wit, w = _witness(circuit, b, s, Path(tmp))
        outcome = decode_outputs(circuit, w["outputs"])
        proof_file = Path(tmp) / "proof.json"
        with _step("prove", progress):
            with _quiet():
                _ezkl(ezkl.prove, str(wit), str(circuit.compiled_path), str(pk), str(proof_file), srs_path=str(srs))
        proof = json.loads(proof_file.read_text())
    inputs, _ = proof_instances(proof, circuit.n)
    if list(inputs) != coms:
        raise CircuitError("the proof's input instances differ from the commitments (ezkl hashing changed?)")
    return ProofBundle(
        proof=proof,
        manifest_sha256=circuit.manifest_sha256(),
        vk_sha256=circuit.vk_sha256(),
        commitments=tuple(coms),
        outcome=outcome,
        ezkl_version=ezkl_version(),
        round_id=round_id,
        circuit_name=str(circuit.manifest.get("name", circuit.dir.name)),
    )


def copy_public_artefacts(circuit: Circuit, dest: str | Path) -> Path:
    """Copy what a bidder needs to verify (manifest, settings, vk, and a dev SRS that travels with
    the circuit) to ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in (MANIFEST_FILE, SETTINGS_FILE, VK_FILE, DEV_SRS_FILE):
        if name != DEV_SRS_FILE or (circuit.dir / name).is_file():
            shutil.copy2(circuit.dir / name, dest / name)
    return dest


