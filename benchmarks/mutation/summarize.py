"""Summarise drive.py's JSON lines: python summarize.py results/*.jsonl > table (markdown)."""

from __future__ import annotations

import collections
import json
import sys

rows = [json.loads(line) for path in sys.argv[1:] for line in open(path) if line.strip()]
count = collections.Counter((r["file"].split("/")[-1], r["result"]) for r in rows)
files = sorted({f for f, _ in count})
print("| module | mutants | killed | survived | timeout | error |\n|---|---|---|---|---|---|")
for f in files:
    n = sum(v for (g, _), v in count.items() if g == f)
    print(f"| {f} | {n} | " + " | ".join(str(count[(f, k)]) for k in ("killed", "survived", "timeout", "error")) + " |")
print(f"| total | {len(rows)} | " + " | ".join(str(sum(1 for r in rows if r['result'] == k)) for k in ("killed", "survived", "timeout", "error")) + " |")
print("\n| result | module:line | function | operator | check | seconds |\n|---|---|---|---|---|---|")
for r in rows:
    chk = r["check"].replace("|", "\\|")
    print(f"| {r['result']} | {r['file'].split('/')[-1]}:{r['line']} | {r['func']} | {r['op']} | `{chk}` | {r['seconds']} |")
