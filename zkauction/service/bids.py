"""A bidder's bids per round, from the file ``zkauction bidder run --bids`` reads (CSV or JSONL)."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Iterable

from zkauction.jsontext import parse_json
from zkauction.protocol.state import ProtocolError


class BidsFileError(ProtocolError):
    """A bids file that cannot be used, naming the line and field."""


def parse_bids(text: str, *, name: str = "bids", m: int | None = None) -> dict[int, list[float]]:
    """Bids per round from CSV (``round,b1,...,bm``; a header line starting ``round`` is skipped) or
    JSONL (``{"round": r, "bids": [b1, ..., bm]}``). Rounds not listed are rounds without a bid."""
    out: dict[int, list[float]] = {}
    lines = text.splitlines()
    jsonl = next((l.lstrip().startswith("{") for l in lines if l.strip()), False)
    rows: Iterable[tuple[int, Any, Any]]
    if jsonl:
        def rows_jsonl() -> Iterable[tuple[int, Any, Any]]:
            for no, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    d = parse_json(line)
                except json.JSONDecodeError as e:
                    raise BidsFileError(f"{name}, line {no}: not JSON ({e.msg})") from None
                if not isinstance(d, dict) or "round" not in d or "bids" not in d:
                    raise BidsFileError(f"{name}, line {no}: expected an object with 'round' and 'bids'")
                yield no, d["round"], d["bids"]
        rows = rows_jsonl()
    else:
        def rows_csv() -> Iterable[tuple[int, Any, Any]]:
            for no, rec in enumerate(csv.reader(io.StringIO(text)), 1):
                if not rec or not "".join(rec).strip() or (no == 1 and rec[0].strip().lower() == "round"):
                    continue
                yield no, rec[0].strip(), rec[1:]
        rows = rows_csv()
    for no, r, bids in rows:
        try:
            if isinstance(r, (float, bool)):
                raise ValueError
            rnd = int(r)
            if rnd < 1:
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise BidsFileError(f"{name}, line {no}, field round: {str(r)[:40]!r} is not a round number (1, 2, ...)") from None
        if not isinstance(bids, list):
            raise BidsFileError(f"{name}, line {no}, field bids: expected a list of numbers")
        vals = []
        for j, b in enumerate(bids):
            try:
                v = float(b)
                if isinstance(b, bool) or not math.isfinite(v):
                    raise ValueError
            except (TypeError, ValueError, OverflowError):
                raise BidsFileError(f"{name}, line {no}, field bid {j + 1}: {str(b)[:40]!r} is not a finite number") from None
            vals.append(v)
        if m is not None and len(vals) != m:
            raise BidsFileError(f"{name}, line {no}, field bids: {len(vals)} bids, the auction has {m} items")
        if rnd in out:
            raise BidsFileError(f"{name}, line {no}, field round: round {rnd} is listed twice")
        out[rnd] = vals
    return out
