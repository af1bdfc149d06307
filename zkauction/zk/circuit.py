"""ezkl circuits of auctions: compile, canonical outcome, prove (docs/design.md, "ONNX and circuit
contract").

Each step is one ezkl call with files in and files out, named as ezkl names them::

    export_onnx -> gen_settings -> calibrate_settings -> compile_circuit -> gen_srs/--srs -> setup
    gen_witness (canonical outcome) -> prove          (verify: zkauction.zk.bundle.verify_bundle)

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
:mod:`zkauction.zk.commitments`), param_visibility "fixed" (the weights are baked into the verifying key,
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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import ezkl

from zkauction.errors import ZkAuctionError
from zkauction.jsontext import parse_json

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


class CircuitError(ZkAuctionError, RuntimeError):
    """A circuit folder that is missing files, was tampered with, or a failed ezkl step."""


class RoundInputError(ZkAuctionError, ValueError):
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


def finite_number(x: Any) -> bool:
    """Whether ``x`` is an int or float that is a finite float (an int beyond the float range is not:
    ``math.isfinite`` would raise on it)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:
        return False


@dataclass(frozen=True)
class Outcome:
    """A round's outcome: allocation [n][m] and payment [n], as decoded from the circuit's outputs."""

    allocation: tuple[tuple[float, ...], ...]
    payment: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"allocation": [list(r) for r in self.allocation], "payment": list(self.payment)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Outcome":
        def number(x: Any) -> float:
            # real, finite numbers only: a "nan" string or a bool would slip through comparisons
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not finite_number(x):
                raise ValueError(str(x)[:40])
            return float(x)

        try:
            return cls(tuple(tuple(number(x) for x in r) for r in d["allocation"]), tuple(number(x) for x in d["payment"]))
        except (KeyError, TypeError, ValueError):
            raise ValueError("an outcome must be a dict with 'allocation' [n][m] and 'payment' [n] finite numbers") from None

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
            manifest = parse_json(mf.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CircuitError(f"{mf}: not valid JSON: {e}") from None
        if not isinstance(manifest, dict):
            raise CircuitError(f"{mf}: not a circuit manifest (a JSON object)")
        if manifest.get("format") != MANIFEST_FORMAT:
            raise CircuitError(f"{mf}: format {manifest.get('format')!r}, expected {MANIFEST_FORMAT!r}")
        setting = manifest.get("setting")
        if not isinstance(setting, dict) or not all(k in setting for k in ("n_bidders", "n_items", "support")):
            raise CircuitError(f"{mf}: no setting (an object with n_bidders, n_items and support)")
        circuit = cls(path, manifest, Path(srs_path) if srs_path is not None else None)
        if check_hashes:
            circuit.check_artefacts()
        return circuit

    # --- manifest fields -------------------------------------------------------------------------
    def auction_setting(self) -> Any:
        """The manifest's setting as an :class:`~zkauction.learn.setting.AuctionSetting` (a bad one
        is a :class:`CircuitError` naming the manifest)."""
        from zkauction.learn.setting import AuctionSetting

        try:
            return AuctionSetting.from_dict(self.manifest["setting"])
        except (ZkAuctionError, TypeError, ValueError, KeyError) as e:
            raise CircuitError(f"{self.dir / MANIFEST_FILE}: {e}") from None

    def participation_model(self) -> Any:
        """The manifest's participation model as a :class:`~zkauction.learn.setting.ParticipationModel`
        (everyone always present when the manifest has none; a bad one is a :class:`CircuitError`)."""
        from zkauction.learn.setting import ParticipationModel

        try:
            return ParticipationModel.from_dict(self.manifest.get("participation", {}), self.n)
        except (ZkAuctionError, TypeError, ValueError, KeyError) as e:
            raise CircuitError(f"{self.dir / MANIFEST_FILE}: {e}") from None

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
                f"SRS file {p} {'is a folder, not a file' if p.is_dir() else 'not found'} (the circuit was set up with SRS sha256 "
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

_QUIET_LOCK = threading.RLock()  # fds 1 and 2 are the process's: one redirect at a time


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence what ezkl prints from Rust (calibration tables, "Using N columns ..."): fds 1 and 2.

    Failures still surface as exceptions, which :func:`_ezkl` turns into one-line errors. Threads
    take turns (a lock): two overlapping redirects of the same fds could each restore the other's
    /dev/null and silence the process for good (a server proving in a worker thread).
    """
    if os.environ.get("ZKAUCTION_EZKL_VERBOSE"):
        yield
        return
    with _QUIET_LOCK, _redirected():
        yield


@contextlib.contextmanager
def _redirected() -> Iterator[None]:
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

def copy_public_artefacts(circuit: Circuit, dest: str | Path) -> Path:
    """Copy what a bidder needs to verify (manifest, settings, vk, and a dev SRS that travels with
    the circuit) to ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in (MANIFEST_FILE, SETTINGS_FILE, VK_FILE, DEV_SRS_FILE):
        if name != DEV_SRS_FILE or (circuit.dir / name).is_file():
            shutil.copy2(circuit.dir / name, dest / name)
    return dest
