"""Proving many rounds at once: a pool of local worker processes, or a Ray cluster.

:class:`ProvingPool` ``(circuit, *, workers=None, ray_address=None)``; :meth:`ProvingPool.prove_many`
``(jobs) -> list[ProofBundle]`` where a job is ``(round_id, bids, salts)``. Results come back in job
order; the first job that fails raises :class:`ProvingError` naming its round (the other jobs are
cancelled).

- ``workers=None``: ``min(len(jobs), os.cpu_count())`` local processes (``concurrent.futures`` with the
  ``spawn`` start method: no fork of a parent holding ezkl's threads or SQLite handles). Each worker
  loads the circuit from its folder once. ``workers=1``, or a single job, proves in this process.
- ``ray_address``: the jobs become Ray tasks. ``"local"`` starts a Ray instance on this machine (and
  stops it on :meth:`ProvingPool.close`); ``"auto"`` or ``"ray://host:port"`` joins a running cluster,
  whose nodes must have zkauction installed and the circuit folder (with its SRS) at the same path.
  Ray is optional: ``pip install 'zkauction[ray]'``.

Bids and salts go to the workers in memory only (pickled through a pipe, or Ray's object
transfer: enable Ray's TLS for a cluster across machines); like :func:`~zkauction.zk.prove.prove_round`
in one process, each worker hands them to ezkl through a temporary folder that is removed after
the proof. Before any worker starts, every job's input is checked here
(:func:`~zkauction.zk.witness.check_round_input`) and a missing proving key is made once.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Sequence

from zkauction.errors import ZkAuctionError
from zkauction.zk.bundle import ProofBundle
from zkauction.zk.circuit import Circuit, CircuitError, RoundInputError
from zkauction.zk.prove import prove_round
from zkauction.zk.witness import check_round_input

Job = tuple[Any, Sequence[Sequence[float]], Sequence[str]]  # (round_id, bids [n][m], salts [n])
OnDone = Callable[[Any, float], None]  # (round_id, seconds the proof took), as each job finishes
RAY_HINT = "Ray is not installed: pip install ray (or pip install 'zkauction[ray]')"


class ProvingError(ZkAuctionError):
    """A job of the pool failed; ``.round_id`` names its round, the message says why."""

    def __init__(self, round_id: Any, reason: str):
        super().__init__(f"round {round_id}: proving failed: {reason}")
        self.round_id = round_id
        self.reason = reason

    def __reduce__(self) -> Any:  # picklable (Ray and process pools send exceptions back)
        return (ProvingError, (self.round_id, self.reason))


# --- in a worker ----------------------------------------------------------------------------------
_CIRCUITS: dict[tuple[str, str | None], Circuit] = {}


def _circuit(circuit_dir: str, srs_path: str | None) -> Circuit:
    key = (circuit_dir, srs_path)
    if key not in _CIRCUITS:
        _CIRCUITS[key] = Circuit.load(circuit_dir, srs_path=srs_path)
    return _CIRCUITS[key]


def _init_worker(circuit_dir: str, srs_path: str | None, threads: int | None) -> None:
    """Process-pool initializer: share the cores between the workers, load the circuit once."""
    if threads is not None:
        os.environ.setdefault("RAYON_NUM_THREADS", str(threads))  # ezkl's prover (read at first use)
    _circuit(circuit_dir, srs_path)


def _run_job(circuit_dir: str, srs_path: str | None, job: Job) -> tuple[ProofBundle, float]:
    """Prove one job; any failure comes back as a :class:`ProvingError` naming its round."""
    round_id, bids, salts = job
    t = time.perf_counter()
    try:
        bundle = prove_round(_circuit(circuit_dir, srs_path), bids, salts, round_id=round_id)
    except ProvingError:
        raise
    except Exception as e:  # noqa: BLE001 - reported with its round; the type goes into the message
        raise ProvingError(round_id, _describe(e)) from None
    return bundle, time.perf_counter() - t


def _describe(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, ZkAuctionError) and msg:
        return msg
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


# --- the pool -------------------------------------------------------------------------------------
class ProvingPool:
    """Proves jobs ``(round_id, bids, salts)`` of one circuit (a :class:`Circuit` or its folder),
    in worker processes or Ray tasks. Use as a context manager (or call :meth:`close`)."""

    def __init__(self, circuit: Circuit | str | Path, *, workers: int | None = None, ray_address: str | None = None):
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
        if ray_address is not None and (not isinstance(ray_address, str) or not ray_address.strip()):
            raise ValueError(f"ray_address must be 'local', 'auto' or 'ray://host:port', got {ray_address!r}")
        self.circuit = circuit if isinstance(circuit, Circuit) else Circuit.load(circuit)
        self.workers = workers
        self.ray_address = ray_address
        self._ray_started = False
        self._srs = str(self.circuit.srs_override) if self.circuit.srs_override is not None else None
        self._dir = str(self.circuit.dir.resolve())

    def __enter__(self) -> "ProvingPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the Ray instance this pool started (``ray_address="local"``); nothing else to do."""
        if self._ray_started:
            import ray

            ray.shutdown()
            self._ray_started = False

    def prove_many(self, jobs: Sequence[Job], *, progress: bool = False, on_done: OnDone | None = None) -> list[ProofBundle]:
        """Prove every job; the bundles in job order. ``on_done(round_id, seconds)`` is called as
        each job finishes (in this process); ``progress`` shows a tqdm bar when several jobs run."""
        jobs = [self._checked(job) for job in jobs]
        if not jobs:
            return []
        if len({repr(j[0]) for j in jobs}) != len(jobs):
            raise ValueError("two jobs name the same round")
        if self.ray_address in (None, "local"):
            self.circuit.ensure_proving_key()  # once, not raced by the workers (this machine's)
        bar = _bar(len(jobs)) if progress and len(jobs) > 1 else None

        def done(round_id: Any, secs: float) -> None:
            if bar is not None:
                bar.update(1)
            if on_done is not None:
                on_done(round_id, secs)

        try:
            if self.ray_address is not None:
                return self._prove_ray(jobs, done)
            n = min(len(jobs), os.cpu_count() or 1) if self.workers is None else min(self.workers, len(jobs))
            if n <= 1:
                return [self._prove_here(job, done) for job in jobs]
            return self._prove_processes(jobs, n, done)
        finally:
            if bar is not None:
                bar.close()

    def _checked(self, job: Any) -> Job:
        try:
            round_id, bids, salts = job
        except (TypeError, ValueError):
            raise ValueError(f"a job is (round_id, bids, salts), got {job!r:.80}") from None
        try:
            check_round_input(self.circuit, bids, salts)
        except (RoundInputError, CircuitError) as e:
            raise ProvingError(round_id, str(e)) from None
        return round_id, [list(r) for r in bids], list(salts)

    def _prove_here(self, job: Job, done: Callable[[Any, float], None]) -> ProofBundle:
        _CIRCUITS.setdefault((self._dir, self._srs), self.circuit)
        bundle, secs = _run_job(self._dir, self._srs, job)
        done(job[0], secs)
        return bundle

    def _prove_processes(self, jobs: list[Job], n: int, done: Callable[[Any, float], None]) -> list[ProofBundle]:
        threads = max(1, (os.cpu_count() or 1) // n)
        ex = ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn"), initializer=_init_worker,
                                 initargs=(self._dir, self._srs, threads))
        try:
            futures = {ex.submit(_run_job, self._dir, self._srs, job): job[0] for job in jobs}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for f in finished:
                    self._result(f, futures[f])  # raises the failure, naming its round
                    done(futures[f], f.result()[1])
            return [f.result()[0] for f in futures]
        finally:
            ex.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _result(f: Any, round_id: Any) -> None:
        e = f.exception()
        if e is None:
            return
        if isinstance(e, ProvingError):
            raise e
        # BrokenProcessPool (a worker killed, e.g. out of memory) or an initializer failure
        raise ProvingError(round_id, f"the worker failed: {_describe(e)}") from None

    def _prove_ray(self, jobs: list[Job], done: Callable[[Any, float], None]) -> list[ProofBundle]:
        ray = _import_ray()
        if not ray.is_initialized():
            kw: dict[str, Any] = {}
            if self.ray_address == "local":  # a new instance here: quiet, sized by ``workers``
                kw = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
                if self.workers is not None:
                    kw["num_cpus"] = self.workers
            ray.init(address=self.ray_address, **kw)
            self._ray_started = self.ray_address == "local"
        task = ray.remote(max_retries=0)(_run_job)
        refs = [task.remote(self._dir, self._srs, job) for job in jobs]
        rounds = {ref: job[0] for ref, job in zip(refs, jobs)}
        results: dict[Any, tuple[ProofBundle, float]] = {}
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    try:
                        results[ref] = ray.get(ref)
                    except ray.exceptions.RayTaskError as e:
                        cause = getattr(e, "cause", None)
                        if isinstance(cause, ProvingError):
                            raise ProvingError(cause.round_id, cause.reason) from None
                        raise ProvingError(rounds[ref], _describe(cause or e)) from None
                    except ray.exceptions.RayError as e:  # a lost worker or node
                        raise ProvingError(rounds[ref], f"the Ray task failed: {_describe(e)}") from None
                    done(rounds[ref], results[ref][1])
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return [results[ref][0] for ref in refs]


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise CircuitError(RAY_HINT) from None
    return ray


def _bar(total: int) -> Any:
    import sys

    from tqdm import tqdm

    return tqdm(total=total, unit="proof", desc="proving", file=sys.stderr)
