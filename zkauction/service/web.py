"""The web view: one read-only page (``GET /``) over ``GET /api/summary``. It never shows a bid or a
salt: a round shows how many commitments were logged and its public outcome; a rejection shows the
bidder and the reason code (not the evidence, which holds the rejected opening); a dispute shows
the bidder (not the opening it published).

The audit's verdict on the page is computed by this server from its own log with
:class:`~zkauction.protocol.audit.Auditor` (proofs verified with the announced circuit), once the
run is finished; it is a convenience, not evidence: ``zkauction monitor`` recomputes it from the log.
That verification runs once per engine (then cached), on the request that first sees the run
finished; everything else on the page is a few index lookups per round.

The page builds its DOM with ``textContent`` / ``setAttribute`` only (never ``innerHTML``): every
string in the summary (the auction's name, reasons, errors) is auctioneer- or bidder-controlled
and is shown as text.
"""

from __future__ import annotations

import weakref
from typing import Any

from zkauction.protocol.state import (
    ABSTENTION,
    BID_COMMITMENT,
    COMMITMENTS_CLOSED,
    DISPUTE,
    OPENING_REJECTED,
    OPENINGS,
    OUTCOME,
    PROOF,
    SEED_REVEAL,
    TTP_VERDICT,
    first_entry,
)

ANSWER_KIND = {"zk": PROOF, "reveal": OPENINGS, "ttp": TTP_VERDICT}
# per engine: the audit draw once the reveal phase is closed, the verdict once the run is finished
_DRAWS: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()
_VERDICTS: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()


def _round(engine: Any, r: int) -> dict[str, Any]:
    ledger, ann = engine.ledger, engine.ann
    bidders, auctioneer = ann.bidders, ann.auctioneer

    def by_bidder(kind: str) -> list[dict[str, Any]]:
        out = []
        for e in ledger.entries(kind=kind, round=r):
            i = e.fields.get("bidder")
            if isinstance(i, int) and 0 <= i < ann.n and e.signer == bidders[i]:
                out.append({"bidder": i, "seq": e.seq})
        return out

    out = first_entry(ledger, OUTCOME, r, auctioneer)
    close = first_entry(ledger, COMMITMENTS_CLOSED, r, auctioneer)
    s = engine.status
    if out is not None:
        phase = "done"
    elif s.round == r:
        phase = s.name(ann.rounds)
    else:
        phase = "not played"
    return {
        "round": r,
        "phase": phase,
        "commitments": len(by_bidder(BID_COMMITMENT)),
        "closed": close is not None,
        "rejections": [{"bidder": e.fields.get("bidder"), "reason": e.fields.get("reason"), "seq": e.seq}
                       for e in ledger.entries(kind=OPENING_REJECTED, round=r) if e.signer == auctioneer],
        "disputes": [d["bidder"] for d in by_bidder(DISPUTE)],
        "abstentions": [d["bidder"] for d in by_bidder(ABSTENTION)],
        "outcome": None if out is None else
        {k: out.fields.get(k) for k in ("participants", "allocation", "payment")} | {"seq": out.seq},
    }


def _draw(engine: Any) -> dict[str, Any] | None:
    """The audit draw (rounds, digest, revealed and withheld seeds), once the reveal phase is closed."""
    if engine in _DRAWS:
        return _DRAWS[engine]
    s, T = engine.status, engine.ann.rounds
    if not (s.round > T and s.phase >= 1):
        return None
    from zkauction.protocol.audit import audit_draw
    from zkauction.protocol.state import AuditError, ProtocolError, read_state

    try:
        d = audit_draw(read_state(engine.ledger)).to_dict()
    except (AuditError, ProtocolError):
        return None
    _DRAWS[engine] = d
    return d


def _verdict(engine: Any) -> dict[str, Any] | None:
    """The audit's verdict as every verifier computes it, once the run is finished (cached when final)."""
    if engine in _VERDICTS:
        return _VERDICTS[engine]
    s, T = engine.status, engine.ann.rounds
    if s.round <= T or s.phase < 2:
        return None
    if engine.ann.mode != "ttp" and engine.circuit is None:  # an "invalid" for want of a verifier would mislead
        return {"status": "not computed", "reason": "this server has no circuit to verify proofs with or recompute "
                "outcomes on", "verdicts": {}, "breaches": None, "penalty_due": None}
    from zkauction.protocol.audit import Auditor
    from zkauction.protocol.auctioneer import circuit_outcome_function

    try:  # the announced auction is the circuit's, never the operator's outcome function (it may be wrong)
        outcome = circuit_outcome_function(engine.circuit) if engine.ann.mode == "reveal" else None
        report = Auditor(engine.ledger, circuit=engine.circuit, outcome=outcome).audit()
    except Exception as e:  # shown, not cached: the next poll tries again
        return {"status": "error", "reason": f"{type(e).__name__}: {e}", "verdicts": {}, "breaches": 0,
                "penalty_due": None}
    v = {"status": report.status, "reason": report.reason, "penalty_due": report.penalty_due,
         "breaches": len(report.breaches), "verdicts": {str(x.round): {"valid": x.valid, "reason": x.reason}
                                                         for x in report.verdicts}}
    if report.status in ("valid", "invalid", "unconfirmed"):  # final: the reveal phase is closed
        _VERDICTS[engine] = v
    return v


def _audit(engine: Any) -> dict[str, Any] | None:
    draw = _draw(engine)
    if draw is None:
        return None
    ann = engine.ann
    kind = ANSWER_KIND[ann.mode]
    verdict = _verdict(engine)
    rounds = []
    for r in draw["rounds"]:
        e = first_entry(engine.ledger, kind, r, ann.third_party if ann.mode == "ttp" else ann.auctioneer)
        v = (verdict or {}).get("verdicts", {}).get(str(r))
        rounds.append({"round": r, "answer": "pending" if e is None else "answered",
                       "seq": None if e is None else e.seq,
                       "verdict": None if v is None else ("valid" if v["valid"] else "invalid"),
                       "reason": None if v is None else v["reason"]})
    return {"draw": draw, "answer_kind": kind, "rounds": rounds,
            "status": verdict["status"] if verdict else "pending",
            "reason": verdict["reason"] if verdict else "the verdict is computed once the run is finished",
            "penalty_due": verdict["penalty_due"] if verdict else None,
            "breaches": verdict["breaches"] if verdict else None,
            "computed_by": "this server, from its log; anyone can recompute it: zkauction monitor URL --circuit DIR"}


def summary(engine: Any, *, limit: int = 50) -> dict[str, Any]:
    """The auction, the newest ``limit`` rounds (commitments, outcomes, rejections, disputes), the
    audit draw, each audited round's answer and verdict, the latest checkpoint. Outcomes are
    public; bids and salts never appear here (not even a rejection's or a dispute's evidence)."""
    ledger, ann = engine.ledger, engine.ann
    s = engine.status
    last = min(ann.rounds, s.round)
    cp = ledger.latest_checkpoint()
    a = ann.auction
    return {
        "auction": {"name": a.get("name"), "n": ann.n, "m": ann.m, "support": ann.support, "rounds": ann.rounds,
                    "audits": ann.audits, "penalty": ann.penalty, "mode": ann.mode, "input_scale": ann.input_scale,
                    "manifest_sha256": a.get("manifest_sha256"), "vk_sha256": a.get("vk_sha256"),
                    "srs_sha256": a.get("srs_sha256"), "ezkl_version": a.get("ezkl_version"),
                    "deadlines": ann.deadlines, "log_id": engine.log_id, "auctioneer": ann.auctioneer},
        "status": {"round": s.round, "phase": "registration" if s.round == 0 else s.name(ann.rounds), "error": engine.error,
                   "finished": s.round > ann.rounds and s.phase >= 2},
        "rounds": [_round(engine, r) for r in range(last, max(0, last - limit), -1)],
        "reveals": len({i for e in ledger.entries(kind=SEED_REVEAL)
                        if isinstance(i := e.fields.get("bidder"), int) and 0 <= i < ann.n and e.signer == ann.bidders[i]}),
        "audit": _audit(engine),
        "checkpoint": None if cp is None else cp.to_dict(),
        "log_size": len(ledger),
    }


PAGE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>zkauction</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:75rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;
font-size:.9rem;vertical-align:top}th{background:#f3f3f3}code{font-size:.8rem;word-break:break-all}
.bad{color:#a00;font-weight:600}.ok{color:#070;font-weight:600}.muted{color:#777}small{color:#555}
</style></head><body>
<h1>zkauction: <span id="name" data-testid="name">...</span></h1>
<p id="status" data-testid="status">loading...</p>
<h2>Auction</h2><table id="auction" data-testid="auction"><tbody></tbody></table>
<h2>Audit</h2><div id="audit" data-testid="audit">not drawn yet</div>
<h2>Latest checkpoint</h2><div id="checkpoint" data-testid="checkpoint">none</div>
<h2>Rounds <small>(newest first)</small></h2>
<table id="rounds" data-testid="rounds"><thead><tr><th>round</th><th>phase</th><th>commitments</th><th>participants</th>
<th>allocation</th><th>payment</th><th>rejections</th><th>disputes / abstentions</th></tr></thead><tbody></tbody></table>
<p><small>Read-only. Bids and salts are never shown: a round shows its commitments and public outcome, a
rejection its reason code. The audit verdict here is computed by this server from its log; anyone can
recompute it with <code>zkauction monitor</code>.</small></p>
<script>
"use strict";
// DOM only: strings become text nodes or attribute values, never markup.
function el(tag,attrs,...kids){const e=document.createElement(tag);
  for(const k in (attrs||{}))e.setAttribute(k,String(attrs[k]));
  for(const c of kids){if(c==null)continue;e.append(c instanceof Node?c:String(c))}return e}
function fill(id,...kids){const e=document.getElementById(id);e.replaceChildren(...kids.filter(k=>k!=null));return e}
function num(x){return typeof x==='number'&&Number.isFinite(x)?String(+x.toFixed(4)):String(x)}
function short(h,n){h=String(h==null?'':h);return h.length>(n||16)?h.slice(0,n||16)+'...':h}
function list(xs){return Array.isArray(xs)?xs.map(num).join(', '):''}
function code(x){return el('code',{},x==null?'':String(x))}
function support(sp){
  const s=JSON.stringify(sp[0]&&sp[0][0]);
  if(sp.every(b=>b.every(iv=>JSON.stringify(iv)===s)))return 'every bidder, every item: ['+list(sp[0][0])+']';
  return sp.map((b,i)=>'bidder '+i+': '+b.map(iv=>'['+list(iv)+']').join(' ')).join('; ')}
function render(s){
  const a=s.auction,st=s.status;
  fill('name',String(a.name));document.title='zkauction: '+String(a.name);
  const p=fill('status','round ',el('b',{},num(st.round)),' of ',num(a.rounds),', phase ',el('b',{},String(st.phase)),
    '; log size '+num(s.log_size)+'; seeds revealed '+num(s.reveals)+' of '+num(a.n),
    st.error?el('span',{class:'bad'},' error: '+String(st.error)):null,
    el('span',{class:'muted'},' (updated '+new Date().toLocaleTimeString()+')'));
  p.dataset.round=st.round;p.dataset.phase=st.phase;
  const row=(k,v,key)=>el('tr',{'data-key':key},el('th',{},k),el('td',{},v));
  document.querySelector('#auction tbody').replaceChildren(
    row('name',String(a.name),'name'),row('setting (n bidders x m items)',num(a.n)+' x '+num(a.m),'setting'),
    row('support',support(a.support),'support'),row('rounds T',num(a.rounds),'T'),row('audited rounds k',num(a.audits),'k'),
    row('penalty',num(a.penalty),'penalty'),row('mode',String(a.mode),'mode'),
    row('circuit manifest sha256',code(a.manifest_sha256),'manifest'),row('verifying key sha256',code(a.vk_sha256),'vk'),
    row('SRS sha256',code(a.srs_sha256),'srs'),row('ezkl version',String(a.ezkl_version),'ezkl'),
    row('log id',code(a.log_id),'log_id'),row('auctioneer key',code(a.auctioneer),'auctioneer'),
    row('deadlines (s)',Object.entries(a.deadlines||{}).map(([k,v])=>k+' '+num(v)).join(', '),'deadlines'));
  const au=s.audit;
  if(!au){fill('audit','not drawn yet: the draw is made from the bidders\\' seeds after round '+num(a.rounds)+
    ' (revealed: '+num(s.reveals)+' of '+num(a.n)+')');}
  else{const d=au.draw;
    const cls=au.status==='valid'?'ok':(au.status==='invalid'||au.status==='unconfirmed'||au.status==='error')?'bad':'muted';
    const rows=au.rounds.map(r=>el('tr',{'data-round':r.round},el('td',{},num(r.round)),
      el('td',{'data-col':'answer',class:r.answer==='answered'?'ok':'muted'},
        r.answer+(r.seq!=null?' ('+au.answer_kind+' at entry '+num(r.seq)+')':'')),
      el('td',{'data-col':'verdict',class:r.verdict==='valid'?'ok':r.verdict?'bad':'muted'},r.verdict||'not yet computed'),
      el('td',{'data-col':'reason'},r.reason||'')));
    fill('audit',
      el('p',{'data-testid':'draw'},'audited rounds: ',el('b',{'data-testid':'draw-rounds'},list(d.rounds)),
        d.digest?el('span',{},'; draw digest ',code(d.digest)):null,
        '; seeds revealed by bidder(s) '+(list(d.revealed)||'none'),
        d.withheld&&d.withheld.length?el('span',{class:'bad','data-testid':'withheld'},
          '; withheld: '+list(d.withheld)+' ('+String(d.fallback)+')'):null),
      el('table',{'data-testid':'audit-rounds'},el('thead',{},el('tr',{},el('th',{},'round'),el('th',{},'answer'),
        el('th',{},'verdict'),el('th',{},'reason'))),el('tbody',{},...rows)),
      el('p',{'data-testid':'verdict'},'verdict: ',el('span',{class:cls},String(au.status)),' - '+String(au.reason),
        au.penalty_due?el('span',{class:'bad'},'; penalty due: '+num(au.penalty_due)):null,
        au.breaches?el('span',{class:'bad'},'; breaches: '+num(au.breaches)):null,
        el('small',{},'. Computed by '+String(au.computed_by)+'.')));}
  const cp=s.checkpoint;
  if(cp)fill('checkpoint','size ',el('b',{'data-testid':'cp-size'},num(cp.size)),', root ',code(cp.root),
    ', signed by ',code(short(cp.signer)),', signature ',code(short(cp.signature)));
  else fill('checkpoint','none');
  document.querySelector('#rounds tbody').replaceChildren(...s.rounds.map(r=>{const o=r.outcome;
    const present=o&&Array.isArray(o.participants)?o.participants.map((x,i)=>x?i:null).filter(i=>i!=null):null;
    const per=(xs,f)=>Array.isArray(xs)?xs.map((x,i)=>'bidder '+i+': '+f(x)).join('; '):'';
    return el('tr',{'data-round':r.round},el('td',{},num(r.round)),el('td',{'data-col':'phase'},String(r.phase)),
      el('td',{'data-col':'commitments'},num(r.commitments)),
      el('td',{'data-col':'participants'},o?(present.length?'bidder(s) '+present.join(', '):
        (r.rejections.length?'none (void: a committed bidder left out)':'none')):''),
      el('td',{'data-col':'allocation'},o?per(o.allocation,x=>'['+list(x)+']'):''),
      el('td',{'data-col':'payment'},o?per(o.payment,num):''),
      el('td',{'data-col':'rejections',class:r.rejections.length?'bad':''},
        r.rejections.map(x=>'bidder '+num(x.bidder)+': '+String(x.reason)).join('; ')),
      el('td',{'data-col':'disputes'},[r.disputes.length?'dispute: bidder(s) '+list(r.disputes):'',
        r.abstentions.length?'abstained: bidder(s) '+list(r.abstentions):''].filter(x=>x).join('; ')))}));
  return st.finished&&au&&(au.status==='valid'||au.status==='invalid'||au.status==='unconfirmed');
}
async function refresh(){  // one request at a time: the next poll is set once this one is answered
  let s;
  try{const r=await fetch('/api/summary',{cache:'no-store'});if(!r.ok)throw new Error('HTTP '+r.status);s=await r.json();}
  catch(e){fill('status','server unreachable ('+String(e.message||e)+'); retrying');setTimeout(refresh,3000);return}
  if(render(s)){document.getElementById('status').append(el('span',{class:'muted'},' final'));return}
  setTimeout(refresh,1500);
}
refresh();
</script></body></html>
"""
