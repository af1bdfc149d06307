"""The web view: one read-only page (no bids, ever) over ``GET /api/summary``."""

from __future__ import annotations

from typing import Any

from zkauction.protocol.state import (
    ABSTENTION,
    BID_COMMITMENT,
    DISPUTE,
    OPENING_REJECTED,
    OUTCOME,
    PROOF,
    OPENINGS,
    SEED_REVEAL,
    TTP_VERDICT,
)


def summary(engine: Any, *, limit: int = 50) -> dict[str, Any]:
    """The auction, the newest ``limit`` rounds (commitments, outcomes, rejections, disputes), the
    audit draw and answers, the latest checkpoint. Outcomes are public; bids never are."""
    ledger, ann = engine.ledger, engine.ann
    s = engine.status
    last = min(ann.rounds, s.round if s.round else 0)
    rounds = []
    for r in range(last, max(0, last - limit), -1):
        out = next(iter(ledger.entries(kind=OUTCOME, round=r)), None)
        rounds.append({
            "round": r,
            "commitments": len(ledger.entries(kind=BID_COMMITMENT, round=r)),
            "rejections": [{"bidder": e.data.get("bidder"), "reason": e.data.get("reason"), "seq": e.seq}
                           for e in ledger.entries(kind=OPENING_REJECTED, round=r)],
            "disputes": [e.data.get("bidder") for e in ledger.entries(kind=DISPUTE, round=r)],
            "abstentions": [e.data.get("bidder") for e in ledger.entries(kind=ABSTENTION, round=r)],
            "outcome": None if out is None else {k: out.data.get(k) for k in ("participants", "allocation", "payment")} | {"seq": out.seq},
        })
    draw = None
    reveals = ledger.entries(kind=SEED_REVEAL)
    if s.round > ann.rounds and s.phase >= 1:
        from zkauction.protocol.audit import audit_draw
        from zkauction.protocol.state import read_state

        d = audit_draw(read_state(ledger))
        kind = {"zk": PROOF, "reveal": OPENINGS, "ttp": TTP_VERDICT}[ann.mode]
        draw = {"rounds": d.rounds, "withheld": getattr(d, "withheld", []),
                "answered": {r: bool(ledger.entries(kind=kind, round=r)) for r in d.rounds}}
    cp = ledger.latest_checkpoint()
    return {
        "auction": {"name": ann.auction.get("name"), "n": ann.n, "m": ann.m, "rounds": ann.rounds, "audits": ann.audits,
                    "penalty": ann.penalty, "mode": ann.mode, "manifest_sha256": ann.auction.get("manifest_sha256"),
                    "vk_sha256": ann.auction.get("vk_sha256"), "srs_sha256": ann.auction.get("srs_sha256"),
                    "deadlines": ann.deadlines, "log_id": engine.log_id},
        "status": {"round": s.round, "phase": s.name(ann.rounds), "error": engine.error},
        "rounds": rounds,
        "reveals": len(reveals),
        "audit": draw,
        "checkpoint": None if cp is None else cp.to_dict(),
        "log_size": len(ledger),
    }


PAGE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>zkauction</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:70rem;color:#222}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;font-size:.9rem}
th{background:#f3f3f3}code{font-size:.8rem;word-break:break-all}.bad{color:#a00;font-weight:600}.ok{color:#070;font-weight:600}
</style></head><body>
<h1>zkauction: <span id="name">...</span></h1>
<p id="status" data-testid="status">loading...</p>
<h2>Auction</h2><table id="auction" data-testid="auction"></table>
<h2>Audit</h2><div id="audit" data-testid="audit">not drawn yet</div>
<h2>Latest checkpoint</h2><div id="checkpoint" data-testid="checkpoint">none</div>
<h2>Rounds</h2><table id="rounds" data-testid="rounds"><thead><tr><th>round</th><th>commitments</th>
<th>participants</th><th>allocation</th><th>payment</th><th>rejections</th><th>disputes</th></tr></thead><tbody></tbody></table>
<script>
function esc(x){return String(x).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]))}
function fmt(v){return v==null?'':esc(JSON.stringify(v))}
async function refresh(){
  let s;
  try{const r=await fetch('/api/summary');s=await r.json();}catch(e){document.getElementById('status').textContent='server unreachable';return}
  const a=s.auction;document.getElementById('name').textContent=a.name;
  document.getElementById('status').innerHTML='round <b>'+esc(s.status.round)+'</b> of '+esc(a.rounds)+', phase <b>'+esc(s.status.phase)+'</b>; log size '+esc(s.log_size)+(s.status.error?' <span class="bad">'+esc(s.status.error)+'</span>':'');
  const rows=[['bidders x items',a.n+' x '+a.m],['rounds T',a.rounds],['audits k',a.audits],['penalty',a.penalty],['mode',a.mode],
   ['circuit manifest sha256','<code>'+esc(a.manifest_sha256)+'</code>'],['verifying key sha256','<code>'+esc(a.vk_sha256)+'</code>'],
   ['SRS sha256','<code>'+esc(a.srs_sha256)+'</code>'],['log id','<code>'+esc(a.log_id)+'</code>'],['deadlines',fmt(a.deadlines)]];
  document.getElementById('auction').innerHTML=rows.map(r=>'<tr><th>'+esc(r[0])+'</th><td>'+(typeof r[1]=='string'&&r[1].startsWith('<code>')?r[1]:esc(r[1]))+'</td></tr>').join('');
  const au=s.audit;
  document.getElementById('audit').innerHTML=au?('audited rounds: <b>'+esc(au.rounds.join(', '))+'</b>; seed reveals: '+esc(s.reveals)+'; '+
    au.rounds.map(r=>'round '+esc(r)+': '+(au.answered[r]?'<span class="ok">answered</span>':'<span class="bad">pending</span>')).join('; ')):'not drawn yet (seed reveals: '+esc(s.reveals)+')';
  const cp=s.checkpoint;document.getElementById('checkpoint').innerHTML=cp?('size '+esc(cp.size)+', root <code>'+esc(cp.root)+'</code>'):'none';
  document.querySelector('#rounds tbody').innerHTML=s.rounds.map(r=>'<tr data-round="'+esc(r.round)+'"><td>'+esc(r.round)+'</td><td>'+esc(r.commitments)+'</td><td>'+
    (r.outcome?fmt(r.outcome.participants):'')+'</td><td>'+(r.outcome?fmt(r.outcome.allocation):'')+'</td><td>'+(r.outcome?fmt(r.outcome.payment):'')+'</td><td>'+
    r.rejections.map(x=>'bidder '+esc(x.bidder)+': '+esc(x.reason)).join('<br>')+'</td><td>'+esc(r.disputes.join(', '))+'</td></tr>').join('');
}
refresh();setInterval(refresh,2000);
</script></body></html>
"""
