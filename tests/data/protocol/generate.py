"""Generate the protocol's known-answer vectors (vectors.json) and the golden logs.

Run once, from the repository root, and commit what it writes::

    .venv/bin/python tests/data/protocol/generate.py

The tests (tests/test_vectors.py) never call this script: they recompute every vector from its
inputs and compare it with the FIXED values it wrote. Changing a hash recipe, a domain string, the
canonical JSON, the audit draw or the checkpoint text breaks them on purpose: every stored log and
every other implementation depends on those bytes.

Everything here is deterministic: Ed25519 keys from fixed 32-byte seeds (RFC 8032 signatures are
deterministic), bidders' secrets fixed (their salts and audit seeds derive from them), fixed bids on
the 1/16 grid, and an outcome function that is exact in binary floating point (item-wise
second-price auction on the snapped bids: every value is a dyadic rational with a small
denominator, so every sum is exact).

Two golden logs (reveal mode, n = 3 bidders, m = 2 items, T = 4 rounds, k = 2 audits):

- ``golden_log.jsonl``: an honest run. Round 2 has an absent bidder; round 3 has an honest
  ``outside_support`` rejection that its bidder disputes (the published opening is outside the
  support, so the dispute proves nothing) and a ``no_opening`` rejection of a bidder that abstained.
- ``golden_log_false_rejection.jsonl``: the same run, except that in round 3 the auctioneer also
  rejects bidder 0's valid opening (``opening_mismatch``), with bidder 0's signed opening as its
  "evidence": the evidence is a valid opening, so the rejection is false and the audit is invalid
  whatever the draw.

Both start with the same announcement (the same log id) and differ from round 3 on.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from collections.abc import Sequence
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from zkauction.protocol import merkle
from zkauction.protocol.audit import Auditor, audit_draw, draw_digest, select_audit_rounds
from zkauction.protocol.checkpoint import SignedCheckpoint
from zkauction.protocol.log import GENESIS_HASH, Ledger, SigningKey, canonical_json, entry_hash, leaf_hash_of, statement_hash
from zkauction.protocol.auctioneer import Auctioneer
from zkauction.protocol.bidder import Bidder
from zkauction.protocol.state import OPENING_REJECTED, read_state, seed_commitment, unique_key
from zkauction.zk import commitments
from zkauction.zk.circuit import Outcome
from zkauction.zk.commitments import CommitmentError

N, M, SCALE, T, K, PENALTY = 3, 2, 4, 4, 2, 10.0
SUPPORT = [[[0.0, 1.0], [0.0, 1.0]] for _ in range(N)]
AUCTION = {"name": "itemwise-second-price", "description": "each item to the highest bid (lowest index on ties), "
                                                          "who pays the second-highest bid for it"}
DEADLINES = {"commit_s": 60, "open_s": 60, "reveal_s": 600}


def label_seed(label: str) -> str:
    """A fixed 32-byte value (hex) named by a label: SHA-256 of ``zkauction-test-vector/<label>``."""
    return hashlib.sha256(f"zkauction-test-vector/{label}".encode()).hexdigest()


KEY_SEEDS = {"auctioneer": label_seed("auctioneer"), **{f"bidder{i}": label_seed(f"bidder{i}") for i in range(N)},
             "other": label_seed("other")}
BIDDER_SECRETS = [label_seed(f"bidder{i}/secret") for i in range(N)]


def itemwise_second_price(bids: Sequence[Sequence[float]], salts: Sequence[str]) -> Outcome:
    """Each item to the highest positive bid (lowest index on ties); the winner pays the highest
    other bid for it (0 if none). Exact in floats on grid bids."""
    n, m = len(bids), len(bids[0])
    alloc = [[0.0] * m for _ in range(n)]
    pay = [0.0] * n
    for j in range(m):
        col = [float(bids[i][j]) for i in range(n)]
        top = max(col)
        if top <= 0:
            continue
        w = col.index(top)
        alloc[w][j] = 1.0
        pay[w] += max((col[i] for i in range(n) if i != w), default=0.0)
    return Outcome(tuple(tuple(r) for r in alloc), tuple(pay))


# Round -> each bidder's bids (zeros: absent). Round 3 is special (see the module docstring).
BIDS = {
    1: [[0.5, 0.25], [0.75, 0.125], [0.3125, 0.625]],
    2: [[0.4375, 0.5], [0.0, 0.0], [0.5, 0.5]],
    3: [[0.625, 0.375], [0.25, 0.875], [1.5, 0.25]],
    4: [[0.125, 0.9375], [0.6875, 0.6875], [0.875, 0.0625]],
}


def keys() -> dict[str, SigningKey]:
    return {name: SigningKey.from_seed(bytes.fromhex(s)) for name, s in KEY_SEEDS.items()}


def build(false_rejection: bool) -> tuple[Ledger, dict[str, Any]]:
    """Play the whole auction on an in-memory log; returns it and facts for the vectors."""
    k = keys()
    ledger = Ledger.in_memory()
    auct = Auctioneer(k["auctioneer"], ledger, itemwise_second_price)
    bidders = [Bidder(i, k[f"bidder{i}"], ledger, secret=bytes.fromhex(BIDDER_SECRETS[i])) for i in range(N)]
    auct.announce(n=N, m=M, support=SUPPORT, input_scale=SCALE, auction=AUCTION, rounds=T, audits=K,
                  penalty=PENALTY, mode="reveal", bidders=[b.key.public_hex for b in bidders], deadlines=DEADLINES)
    for b in bidders:
        b.register()
    facts: dict[str, Any] = {}
    for r in range(1, T + 1):
        present = [b for b in bidders if any(x != 0 for x in BIDS[r][b.index])]
        for b in present:
            b.commit(r, BIDS[r][b.index])
        auct.close_commitments(r)
        for b in present:
            if r == 3 and b.index == 1:
                b.abstain(r)  # commits but will not open: it says so, and is rejected for no_opening
                continue
            opening = b.open(r)
            if r == 3 and false_rejection and b.index == 0:
                # The dishonest auctioneer receives a valid opening and logs it as not matching.
                commitments.check_opening(ledger.entries(kind="commitments_closed", round=r)[0].data["commitments"][0],
                                          opening.opening, SCALE)
                evidence = {"bids": list(opening.opening.bids), "salt": opening.opening.salt, "signature": opening.signature}
                e = ledger.append(OPENING_REJECTED, {"bidder": 0, "reason": "opening_mismatch", "evidence": evidence},
                                  auct.key, round=r, unique=unique_key(OPENING_REJECTED, r, 0))
                facts["false_rejection_seq"] = e.seq
                continue
            try:
                auct.receive_opening(r, b.index, opening)
            except CommitmentError:
                pass  # logged as opening_rejected
        auct.close_round(r)
        for b in present:
            # a bidder whose opening was rejected publishes it anyway (after the outcome it cannot
            # change the outcome; the logged evidence decides whether the rejection was false)
            if b.check_outcome(r) == "rejected" and b.index != 1:
                d = b.dispute(r)
                facts.setdefault("disputes", []).append({"round": r, "bidder": b.index, "seq": d.seq})
    for b in bidders:
        b.reveal()
    auct.close_reveals()
    draw = audit_draw(read_state(ledger))
    for r in draw.rounds:
        auct.publish_openings(r)
    facts["draw"] = draw.to_dict()
    return ledger, facts


def golden(name: str, false_rejection: bool) -> dict[str, Any]:
    ledger, facts = build(false_rejection)
    (HERE / f"{name}.jsonl").write_text("".join(json.dumps(e.to_dict(), sort_keys=True) + "\n" for e in ledger))
    cp = ledger.latest_checkpoint()
    assert cp is not None and cp.size == len(ledger)
    (HERE / f"{name}.checkpoint.json").write_text(json.dumps(cp.to_dict(), indent=2, sort_keys=True) + "\n")
    report = Auditor(ledger, outcome=itemwise_second_price).audit()
    leaves = [leaf_hash_of(e) for e in ledger]
    n = len(ledger)
    sizes = sorted({1, 2, 3, 4, 5, 7, 8, 13, 16, n - 1, n})
    st = read_state(ledger)
    return {
        "file": f"{name}.jsonl",
        "checkpoint_file": f"{name}.checkpoint.json",
        "entries": n,
        "log_id": ledger.log_id,
        "head": ledger.head(),
        "kinds": [e.kind for e in ledger],
        "roots": {str(s): merkle.root_from_leaf_hashes(leaves[:s]).hex() for s in sizes},
        "inclusion": [{"index": i, "size": s, "proof": [h.hex() for h in merkle.inclusion_proof(leaves, i, s)]}
                      for i, s in ((0, n), (5, 13), (n - 1, n))],
        "consistency": [{"old_size": a, "new_size": b, "proof": [h.hex() for h in merkle.consistency_proof(leaves, a, b)]}
                        for a, b in ((1, n), (7, n), (13, 16))],
        "audit": {"status": report.status, "draw_digest": report.draw.digest, "audited_rounds": report.draw.rounds,
                  "breaches": [{"seq": b.seq, "round": b.round, "reason": b.reason} for b in report.breaches]},
        "seeds": {str(i): str(st.reveals[i].data["seed"]) for i in sorted(st.reveals)},
        "facts": facts,
    }


def main() -> None:
    k = keys()
    out: dict[str, Any] = {
        "format": "zkauction-test-vectors/1",
        "notes": [
            "All hex is lowercase. Ed25519 is RFC 8032 (pure); a key's 'seed' is its 32-byte private seed.",
            ("Canonical JSON: keys sorted by Python string order (code points), separators ',' and ':', no ASCII "
             "escaping (UTF-8), floats in Python's shortest round-trip repr (1.0, 0.5, 1e-07, 1e+21), no NaN/Infinity."),
            ("entry_hash = SHA3-256('zkauction-ledger-entry-v1\\x00' || for each of (str(seq), str(round) or '', kind, "
             "payload text, prev_hash hex text, signer hex text): 8-byte big-endian UTF-8 length || UTF-8 bytes); "
             "an entry's signature is Ed25519 over the 32 raw bytes of its statement hash: SHA3-256("
             "'zkauction-ledger-statement-v1\\x00' || the same length-prefixed encoding of (log id hex text, "
             "or '' for entry 0; str(round) or ''; kind; payload text; signer hex text)). The author signs what it "
             "says and in which log; the operator places it (seq, prev_hash)."),
            "Merkle tree: RFC 9162 with SHA-256; leaf data is the 32 raw bytes of the entry hash.",
            ("Checkpoint: Ed25519 over the UTF-8 bytes of 'zkauction-checkpoint-v1\\n<log id>\\n<size>\\n<root>\\n'; "
             "the log id is the hash of entry 0."),
            ("seed_commitment = SHA3-256('zkauction-audit-seed-v1\\x00' || 4-byte big-endian bidder index || 32-byte seed)."),
            ("draw digest = SHA3-256('zkauction-audit-draw-v2\\x00' || 32-byte log id || for each bidder in ascending "
             "order: 4-byte big-endian index || 32-byte seed); audited rounds: x_c = SHA3-256(digest || 8-byte "
             "big-endian c) for c = 0, 1, ... as a big-endian integer, skipped if x_c >= floor(2^256 / T) * T, else "
             "round x_c mod T + 1 unless already chosen, until k rounds; sorted."),
            ("Bidder secrets: audit seed = SHAKE-256('zkauction-bid-salt-v1\\x00' || secret || 'audit-seed', 32 bytes); "
             "salt of round r = (SHAKE-256('zkauction-bid-salt-v1\\x00' || secret || 'salt' || 8-byte big-endian r, "
             "64 bytes) as a big-endian integer) mod the BN254 scalar field prime, as 32 bytes little-endian hex."),
            ("Bid commitments: ezkl's Poseidon over the bids as field elements at the input scale and the salt "
             "(zkauction/zk/commitments.py)."),
            ("Golden logs: one JSON object per line (seq, round, kind, payload as the exact hashed text, prev_hash, "
             "hash, signer, signature). Outcome function: " + AUCTION["description"] + "."),
        ],
        "keys": {name: {"seed": KEY_SEEDS[name], "public": key.public_hex} for name, key in k.items()},
    }
    msgs = [b"", b"zkauction", bytes(range(32))]
    out["signatures"] = [{"key": name, "message_hex": m.hex(), "signature": k[name].sign(m)}
                         for name in ("auctioneer", "bidder0") for m in msgs]
    values = [{"b": 1, "a": [0.5, 1.0, -0.0, 1e-07, 1e21]}, {"z": None, "y": True, "x": "caf\u00e9 \u20ac"},
              {"nested": {"b": [], "a": {}}, "int": 10**20}]
    out["canonical_json"] = [{"value": v, "text": canonical_json(v)} for v in values]
    hand = [
        (0, 1, "outcome", {"b": 1, "a": [0.5]}, GENESIS_HASH, "auctioneer", ""),
        (1, None, "registration", {"bidder": 0, "note": "caf\u00e9"}, "ab" * 32, "bidder0", "ef" * 32),
        (7, 3, "bid_commitment", {"bidder": 2, "commitment": "00" * 32}, "cd" * 32, "bidder2", "ef" * 32),
    ]
    out["entry_hashes"] = []
    for seq, rnd, kind, payload, prev, signer, log_id in hand:
        text = canonical_json(payload)
        h = entry_hash(seq, rnd, kind, text, prev, k[signer].public_hex)
        sh = statement_hash(log_id, rnd, kind, text, k[signer].public_hex)
        out["entry_hashes"].append({
            "seq": seq, "round": rnd, "kind": kind, "payload": payload, "payload_text": text, "prev_hash": prev,
            "signer_key": signer, "signer": k[signer].public_hex, "hash": h, "log_id": log_id, "statement_hash": sh,
            "leaf_hash": merkle.leaf_hash(bytes.fromhex(h)).hex(), "signature": k[signer].sign(bytes.fromhex(sh)),
        })
    out["bidder_secrets"] = []
    seeds_ledger, _ = build(False)  # seeds and salts derive from the secret and the log id
    for i, secret in enumerate(BIDDER_SECRETS):
        b = Bidder(i, k[f"bidder{i}"], seeds_ledger, secret=bytes.fromhex(secret))
        out["bidder_secrets"].append({"bidder": i, "secret": secret, "log_id": seeds_ledger.log_id, "audit_seed": b.seed,
                                      "salts": {str(r): b.salt(r) for r in (1, 2, 3)}})
    out["seed_commitments"] = [{"bidder": d["bidder"], "seed": d["audit_seed"],
                                "commitment": seed_commitment(d["bidder"], d["audit_seed"])}
                               for d in out["bidder_secrets"]]
    out["seed_commitments"].append({"bidder": 7, "seed": "11" * 32, "commitment": seed_commitment(7, "11" * 32)})
    out["bid_commitments"] = [
        {"bids": bids, "salt": salt, "scale": SCALE, "commitment": commitments.commit(bids, salt, SCALE)}
        for bids, salt in (([0.5, 0.25], out["bidder_secrets"][0]["salts"]["1"]), ([0.0, 0.0], "00" * 32))
    ]
    draws = []
    for log_id, seeds in ((label_seed("log"), {0: "11" * 32, 1: "22" * 32, 2: "33" * 32}),
                          (label_seed("log"), {0: "11" * 32, 1: "22" * 32, 2: "34" * 32}),
                          (label_seed("log2"), {0: label_seed("s0"), 1: label_seed("s1")})):
        digest = draw_digest(log_id, seeds)
        draws.append({"log_id": log_id, "seeds": {str(i): s for i, s in seeds.items()}, "digest": digest.hex(),
                      "selections": [{"rounds": t, "audits": a, "selected": select_audit_rounds(digest, t, a)}
                                     for t, a in ((4, 2), (10, 3), (1000, 5), (7, 7))]})
    out["audit_draws"] = draws
    honest = golden("golden_log", False)
    cheat = golden("golden_log_false_rejection", True)
    assert honest["audit"]["status"] == "valid", honest["audit"]
    assert cheat["audit"]["status"] == "invalid", cheat["audit"]
    out["golden_logs"] = {"honest": honest, "false_rejection": cheat}
    cp = SignedCheckpoint.sign(k["auctioneer"], honest["log_id"], honest["entries"], honest["roots"][str(honest["entries"])])
    cp8 = SignedCheckpoint.sign(k["auctioneer"], honest["log_id"], 8, honest["roots"]["8"])
    out["checkpoints"] = [
        {"key": "auctioneer", "log_id": c.log_id, "size": c.size, "root": c.root,
         "signed_text": SignedCheckpoint.message(c.log_id, c.size, c.root).decode(), "signature": c.signature,
         "json": c.to_json()}
        for c in (cp, cp8)
    ]
    (HERE / "vectors.json").write_text(json.dumps(out, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"wrote {HERE / 'vectors.json'}: golden logs of {honest['entries']} and {cheat['entries']} entries")


if __name__ == "__main__":
    main()
