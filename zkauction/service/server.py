"""The auctioneer as an HTTP service (FastAPI on uvicorn): ``zkauction serve``.

Endpoints (JSON; every body validated, a bad one answered 4xx naming the field):

- ``GET /api/status?round=R&phase=P&wait=S``: where the run is (long poll: returns once the run
  reached round R, phase P, or after S seconds)
- ``GET /api/log/entries?start=&stop=&kind=&round=`` (at most 1,000 a page), ``GET /api/log/entry/{seq}``,
  ``GET /api/log/checkpoint``, ``GET /api/log/inclusion?seq=&size=``, ``GET /api/log/consistency?old=&new=``:
  the public log, read-only
- ``POST /api/statements``: a bidder's signed statements (registration, commitment, dispute,
  abstention, seed reveal); the server is the only writer of its log
- ``POST /api/rounds/{r}/opening``: a bidder's signed opening (to the auctioneer only)
- ``POST /api/rounds/{r}/pass``: a bidder's signed "not bidding this round" (never logged)
- ``GET /api/summary``, ``GET /``: what the web view shows (no bids)

Only the engine (one event loop) writes the log. Nothing a request does removes or changes a logged
entry: a refused request changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from pathlib import Path
from typing import Any, Optional

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, field_validator

from zkauction.protocol.log import LedgerError, Statement
from zkauction.protocol.state import ProtocolError
from zkauction.service.engine import Engine, Rejected

MAX_BODY = 64 * 1024  # bytes: the largest request body accepted
PAGE = 1000
MAX_INT = 2**62  # rounds, sequence numbers and sizes: SQLite integers (a larger one would be a 500)
HEX64 = r"^[0-9a-f]{64}$"
# a plain Ed25519 signature or a batch signature "b1.INDEX.COUNT.SIG.PATH" (its exact rules and the
# check: zkauction.protocol.entries.verify_signature)
SIGNATURE = r"^(?:[0-9a-f]{128}|b1\.[0-9]{1,7}\.[0-9]{1,7}\.[0-9a-f]{128}\.[0-9a-f]{0,1280})$"


class StatementIn(BaseModel):
    kind: str = Field(min_length=1, max_length=64)
    round: Optional[int] = Field(default=None, ge=1, le=MAX_INT)
    payload: str = Field(min_length=2, max_length=16 * 1024)
    signer: str = Field(pattern=HEX64)
    signature: str = Field(pattern=SIGNATURE)


class StatementsIn(BaseModel):
    statements: list[StatementIn] = Field(min_length=1, max_length=16)


class OpeningIn(BaseModel):
    bidder: int = Field(ge=0, le=10_000)
    bids: list[float] = Field(min_length=1, max_length=1024)
    salt: str = Field(pattern=HEX64)
    signature: str = Field(pattern=SIGNATURE)

    @field_validator("bids")
    @classmethod
    def finite(cls, v: list[float]) -> list[float]:
        for j, b in enumerate(v):
            if not math.isfinite(b):
                raise ValueError(f"bids[{j}] is not a finite number")
        return v


class PassIn(BaseModel):
    bidder: int = Field(ge=0, le=10_000)
    signature: str = Field(pattern=SIGNATURE)


def _entry(e: Any) -> dict[str, Any]:
    return e.to_dict()


def create_app(engine: Engine, *, start_engine: bool = True) -> FastAPI:
    """The ASGI app over ``engine`` (which it starts on startup unless told not to)."""
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        task = asyncio.get_running_loop().create_task(engine.run()) if start_engine else None
        yield
        if task is not None:
            task.cancel()

    app = FastAPI(title="zkauction auctioneer", version="1", docs_url="/api/docs", openapi_url="/api/openapi.json",
                  lifespan=lifespan)
    ledger = engine.ledger
    ann = engine.ann
    app.state.engine = engine

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # field and problem only: the offending input is not echoed (it may not even be JSON, e.g. NaN)
        errors = [{"field": ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body", "problem": e.get("msg", "")}
                  for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(f"{e['field']}: {e['problem']}" for e in errors), "errors": errors},
                            status_code=422)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        if request.method in ("POST", "PUT", "PATCH"):
            length = request.headers.get("content-length")
            if length is None or not length.isdigit():
                return JSONResponse({"detail": "a Content-Length header is required"}, status_code=411)
            if int(length) > MAX_BODY:
                return JSONResponse({"detail": f"request body of {length} bytes exceeds the limit of {MAX_BODY}"},
                                    status_code=413)
        return await call_next(request)

    @app.exception_handler(Rejected)
    async def _rejected(request: Request, exc: Rejected) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(ProtocolError)
    async def _protocol(request: Request, exc: ProtocolError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(LedgerError)
    async def _ledger(request: Request, exc: LedgerError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    def size() -> int:
        return len(ledger)

    def status_dict() -> dict[str, Any]:
        s = engine.status
        return {"round": s.round, "phase": s.phase, "phase_name": s.name(ann.rounds), "rounds": ann.rounds,
                "log_size": size(), "log_id": engine.log_id, "error": engine.error}

    @app.get("/api/status")
    async def status(round: int = Query(0, ge=0, le=MAX_INT), phase: int = Query(0, ge=0, le=3),
                     wait: float = Query(0.0, ge=0.0, le=60.0)) -> dict[str, Any]:
        if wait > 0:
            await engine.wait_status(round, phase, wait)
        return status_dict()

    @app.get("/api/log/entries")
    async def entries(start: int = Query(0, ge=0, le=MAX_INT), stop: Optional[int] = Query(None, ge=0, le=MAX_INT),
                      kind: Optional[str] = Query(None, max_length=64), round: Optional[int] = Query(None, ge=0, le=MAX_INT),
                      limit: int = Query(PAGE, ge=1, le=PAGE)) -> dict[str, Any]:
        out = []
        for e in ledger.storage.scan(start, kind, round, stop):
            out.append(_entry(e))
            if len(out) >= limit:
                break
        return {"entries": out, "size": size(), "more": len(out) >= limit}

    @app.get("/api/log/entry/{seq}")
    async def entry(seq: int) -> dict[str, Any]:
        e = ledger.storage.get(seq) if 0 <= seq <= MAX_INT else None
        if e is None:
            raise HTTPException(404, f"the log has no entry {seq} (size {size()})")
        return _entry(e)

    @app.get("/api/log/checkpoint")
    async def checkpoint() -> dict[str, Any]:
        cp = ledger.latest_checkpoint()
        if cp is None:
            raise HTTPException(404, "the log has no signed checkpoint yet")
        return {"checkpoint": cp.to_dict(), "size": size()}

    def _proof_size(size_: Optional[int]) -> int:
        n = size()
        if size_ is None:
            return n
        if not 0 < size_ <= n:
            raise HTTPException(400, f"size: {size_} is not in 1..{n}")
        return size_

    @app.get("/api/log/inclusion")
    async def inclusion(seq: int = Query(ge=0, le=MAX_INT), size: Optional[int] = Query(None, ge=1, le=MAX_INT)) -> dict[str, Any]:
        s = _proof_size(size)
        if seq >= s:
            raise HTTPException(400, f"seq: {seq} is not below the tree size {s}")
        return {"seq": seq, "size": s, "proof": ledger.inclusion_proof(seq, s), "root": ledger.root(s)}

    @app.get("/api/log/consistency")
    async def consistency(old: int = Query(ge=0, le=MAX_INT), new: Optional[int] = Query(None, ge=1, le=MAX_INT)) -> dict[str, Any]:
        s = _proof_size(new)
        if old > s:
            raise HTTPException(400, f"old: {old} is larger than new: {s}")
        return {"old": old, "new": s, "proof": ledger.consistency_proof(old, s) if old else [], "root": ledger.root(s)}

    @app.post("/api/statements")
    async def statements(body: StatementsIn) -> dict[str, Any]:
        out = []
        for st in body.statements:
            e = await engine.submit(Statement(st.kind, st.round, st.payload, st.signer, st.signature))
            out.append(_entry(e))
        return {"entries": out}

    @app.post("/api/rounds/{round}/opening")
    async def opening(round: int, body: OpeningIn) -> dict[str, Any]:
        engine.receive_opening(round, body.bidder, body.bids, body.salt, body.signature)
        return {"accepted": True, "round": round, "bidder": body.bidder}

    @app.post("/api/rounds/{round}/pass")
    async def pass_(round: int, body: PassIn) -> dict[str, Any]:
        engine.receive_pass(round, body.bidder, body.signature)
        return {"accepted": True, "round": round, "bidder": body.bidder}

    @app.get("/api/summary")
    async def summary(limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
        from zkauction.service.web import summary as make_summary

        return make_summary(engine, limit=limit)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        from zkauction.service.web import PAGE_HTML

        return PAGE_HTML

    return app


def serve(engine: Engine, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "warning") -> None:
    """Run the service until interrupted (uvicorn, one process: the engine is the log's only writer)."""
    import uvicorn

    uvicorn.run(create_app(engine), host=host, port=port, log_level=log_level, access_log=False)


def write_port_file(path: Optional[Path], port: int) -> None:
    if path is not None:
        path.write_text(f"{port}\n")
