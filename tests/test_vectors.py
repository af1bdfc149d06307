"""Known-answer vectors of the protocol (tests/data/protocol/vectors.json) and the golden logs.

Every value is recomputed here from its inputs and compared with the FIXED value in the file
(written once by tests/data/protocol/generate.py, which the tests never call): keys from seeds,
signatures, canonical JSON, entry hashes, seed commitments, bid commitments, the audit draw, Merkle
roots and proofs, checkpoints. The golden logs are complete small auctions (reveal mode); they must
verify, and the audit must reach the pinned verdicts: valid for the honest one, invalid naming the
false rejection for the other. Another implementation can check itself against the same files.
"""

import hashlib
import json
from pathlib import Path

import pytest

from zkauction.cli.log import verify_log
from zkauction.protocol import merkle
from zkauction.protocol.audit import Auditor, audit_draw, draw_digest, select_audit_rounds
from zkauction.protocol.checkpoint import ForkError, LogView, SignedCheckpoint
from zkauction.protocol.log import (
    GENESIS_HASH,
    ChainError,
    Entry,
    Ledger,
    SigningKey,
    canonical_json,
    check_entry,
    entry_hash,
    leaf_hash_of,
    statement_hash,
    verify_signature,
)
from zkauction.protocol.bidder import Bidder
from zkauction.protocol.state import read_state, seed_commitment
from zkauction.protocol.storage import MemoryStorage, SQLiteStorage
from zkauction.zk import commitments
from zkauction.zk.circuit import Outcome

DATA = Path(__file__).resolve().parent / "data" / "protocol"
V = json.loads((DATA / "vectors.json").read_text())
GOLDEN = ["honest", "false_rejection"]


def second_price(bids, salts):
    """The golden logs' auction, written again here: each item to the highest positive bid (the
    lowest index among equal bids), who pays the highest other bid for it."""
    n, m = len(bids), len(bids[0])
    alloc = [[0.0] * m for _ in range(n)]
    pay = [0.0] * n
    for j in range(m):
        ranked = sorted(range(n), key=lambda i: (-float(bids[i][j]), i))
        w = ranked[0]
        if float(bids[w][j]) > 0:
            alloc[w][j] = 1.0
            pay[w] += float(bids[ranked[1]][j]) if n > 1 else 0.0
    return Outcome(tuple(tuple(r) for r in alloc), tuple(pay))


def key(name):
    return SigningKey.from_seed(bytes.fromhex(V["keys"][name]["seed"]))


def read_entries(name):
    g = V["golden_logs"][name]
    return [Entry.from_dict(json.loads(line)) for line in (DATA / g["file"]).read_text().splitlines()]


def load(name, entries=None):
    """The golden log in a Ledger over MemoryStorage: the stored entries verbatim, then the tree
    rebuilt from them, and its final checkpoint stored beside them."""
    g = V["golden_logs"][name]
    storage = MemoryStorage()
    storage.append_many([(e, None) for e in (entries if entries is not None else read_entries(name))])
    cp = SignedCheckpoint.load(DATA / g["checkpoint_file"])
    storage.put_checkpoint(cp.size, cp.to_json())
    return Ledger(storage)


# --------------------------------------------------------------------------------------------------
# Primitives


def test_keys_from_seeds():
    assert set(V["keys"]) >= {"auctioneer", "bidder0", "bidder1", "bidder2"}
    publics = set()
    for k in V["keys"].values():
        assert len(k["seed"]) == 64 and SigningKey.from_seed(bytes.fromhex(k["seed"])).public_hex == k["public"]
        publics.add(k["public"])
    assert len(publics) == len(V["keys"])


def test_signatures():
    assert V["signatures"]
    for s in V["signatures"]:
        msg = bytes.fromhex(s["message_hex"])
        assert key(s["key"]).sign(msg) == s["signature"]  # Ed25519 is deterministic
        assert verify_signature(V["keys"][s["key"]]["public"], msg, s["signature"])
        assert not verify_signature(V["keys"][s["key"]]["public"], msg + b"\x00", s["signature"])


def test_canonical_json():
    assert len(V["canonical_json"]) >= 3
    for c in V["canonical_json"]:
        assert canonical_json(c["value"]) == c["text"]
        assert canonical_json(json.loads(c["text"])) == c["text"]  # read back, it serialises the same


def test_entry_hashes_and_signatures():
    assert len(V["entry_hashes"]) >= 3
    for v in V["entry_hashes"]:
        assert canonical_json(v["payload"]) == v["payload_text"]
        assert V["keys"][v["signer_key"]]["public"] == v["signer"]
        h = entry_hash(v["seq"], v["round"], v["kind"], v["payload_text"], v["prev_hash"], v["signer"])
        assert h == v["hash"]
        assert merkle.leaf_hash(bytes.fromhex(h)).hex() == v["leaf_hash"]
        sh = statement_hash(v["log_id"], v["round"], v["kind"], v["payload_text"], v["signer"])
        assert sh == v["statement_hash"]
        assert key(v["signer_key"]).sign(bytes.fromhex(sh)) == v["signature"]
        e = Entry(v["seq"], v["round"], v["kind"], v["payload_text"], v["prev_hash"], v["hash"], v["signer"], v["signature"])
        check_entry(e, v["seq"], v["prev_hash"], log_id=v["log_id"])
        if v["seq"]:  # the same statement signed for another log does not verify
            with pytest.raises(ChainError, match="signature"):
                check_entry(e, log_id="12" * 32)
        assert leaf_hash_of(e).hex() == v["leaf_hash"]
    assert V["entry_hashes"][0]["prev_hash"] == GENESIS_HASH


def test_bidder_secrets_seeds_and_salts():
    ledger = load("honest")
    for v in V["bidder_secrets"]:
        i = v["bidder"]
        assert v["log_id"] == ledger.log_id
        b = Bidder(i, key(f"bidder{i}"), ledger, secret=bytes.fromhex(v["secret"]))
        assert b.seed == v["audit_seed"]
        assert {str(r): b.salt(int(r)) for r in v["salts"]} == v["salts"]


def test_seed_commitments():
    assert len(V["seed_commitments"]) >= 2
    for v in V["seed_commitments"]:
        assert seed_commitment(v["bidder"], v["seed"]) == v["commitment"]


def test_bid_commitments():
    for v in V["bid_commitments"]:
        assert commitments.commit(v["bids"], v["salt"], v["scale"]) == v["commitment"]


def test_audit_draws():
    assert len(V["audit_draws"]) >= 2
    digests = set()
    for d in V["audit_draws"]:
        digest = draw_digest(d["log_id"], {int(i): s for i, s in d["seeds"].items()})
        assert digest.hex() == d["digest"]
        digests.add(d["digest"])
        for s in d["selections"]:
            assert select_audit_rounds(digest, s["rounds"], s["audits"]) == s["selected"]
    assert len(digests) == len(V["audit_draws"])  # one seed changed, another draw


def test_signed_checkpoints():
    assert V["checkpoints"]
    for c in V["checkpoints"]:
        assert SignedCheckpoint.message(c["log_id"], c["size"], c["root"]).decode() == c["signed_text"]
        assert c["signed_text"] == f"zkauction-checkpoint-v1\n{c['log_id']}\n{c['size']}\n{c['root']}\n"
        cp = SignedCheckpoint.sign(key(c["key"]), c["log_id"], c["size"], c["root"])
        assert cp.signature == c["signature"] and cp.to_json() == c["json"]
        SignedCheckpoint.from_json(c["json"]).verify(V["keys"][c["key"]]["public"])


def test_the_recipes_in_the_notes_reproduce_the_vectors():
    """The vectors' notes are enough for another implementation: redo the hashes with hashlib only."""
    for v in V["entry_hashes"]:
        h = hashlib.sha3_256(b"zkauction-ledger-entry-v1\x00")
        for field in (str(v["seq"]), "" if v["round"] is None else str(v["round"]), v["kind"], v["payload_text"],
                      v["prev_hash"], v["signer"]):
            b = field.encode("utf-8")
            h.update(len(b).to_bytes(8, "big") + b)
        assert h.hexdigest() == v["hash"]
        assert hashlib.sha256(b"\x00" + bytes.fromhex(v["hash"])).hexdigest() == v["leaf_hash"]
    for v in V["seed_commitments"]:
        data = b"zkauction-audit-seed-v1\x00" + v["bidder"].to_bytes(4, "big") + bytes.fromhex(v["seed"])
        assert hashlib.sha3_256(data).hexdigest() == v["commitment"]
    for d in V["audit_draws"]:
        h = hashlib.sha3_256(b"zkauction-audit-draw-v2\x00" + bytes.fromhex(d["log_id"]))
        for i in sorted(d["seeds"], key=int):
            h.update(int(i).to_bytes(4, "big") + bytes.fromhex(d["seeds"][i]))
        assert h.hexdigest() == d["digest"]
        for s in d["selections"]:
            t, chosen, c = s["rounds"], [], 0
            while len(chosen) < s["audits"]:
                x = int.from_bytes(hashlib.sha3_256(h.digest() + c.to_bytes(8, "big")).digest(), "big")
                c += 1
                if x < (2**256 // t) * t and x % t + 1 not in chosen:
                    chosen.append(x % t + 1)
            assert sorted(chosen) == s["selected"]
    prime = commitments.FIELD_MODULUS
    for v in V["bidder_secrets"]:
        secret = b"zkauction-bid-salt-v1\x00" + bytes.fromhex(v["secret"])
        log_id = bytes.fromhex(v["log_id"])
        assert hashlib.shake_256(secret + b"audit-seed" + log_id).hexdigest(32) == v["audit_seed"]
        for r, salt in v["salts"].items():
            x = int.from_bytes(hashlib.shake_256(secret + b"salt" + log_id + int(r).to_bytes(8, "big")).digest(64), "big")
            assert (x % prime).to_bytes(32, "little").hex() == salt
    for c in V["checkpoints"]:
        assert c["signed_text"] == f"zkauction-checkpoint-v1\n{c['log_id']}\n{c['size']}\n{c['root']}\n"


# --------------------------------------------------------------------------------------------------
# The golden logs


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_log_entries_hashes_and_tree(name):
    g = V["golden_logs"][name]
    entries = read_entries(name)
    ledger = load(name, entries)
    assert len(ledger) == g["entries"] == len(entries)
    assert [e.kind for e in entries] == g["kinds"]
    assert ledger.log_id == g["log_id"] and ledger.head() == g["head"]
    check = ledger.verify_chain()
    assert (check.n_entries, check.head) == (g["entries"], g["head"])
    # every signature is reproduced by its signer's key (deterministic Ed25519)
    by_public = {k["public"]: name for name, k in V["keys"].items()}
    for e in entries:
        sh = statement_hash("" if e.seq == 0 else g["log_id"], e.round, e.kind, e.payload, e.signer)
        assert key(by_public[e.signer]).sign(bytes.fromhex(sh)) == e.signature
    # Merkle roots and proofs, from the entries (the reference functions and the tree)
    leaves = [leaf_hash_of(e) for e in entries]
    for size, root in g["roots"].items():
        assert merkle.root_from_leaf_hashes(leaves[:int(size)]).hex() == root
        assert ledger.root(int(size)) == root
    assert g["roots"][str(g["entries"])] == check.root
    for p in g["inclusion"]:
        assert ledger.inclusion_proof(p["index"], p["size"]) == p["proof"]
        merkle.verify_inclusion(leaves[p["index"]], p["index"], p["size"], [bytes.fromhex(h) for h in p["proof"]],
                                bytes.fromhex(g["roots"][str(p["size"])]))
    for p in g["consistency"]:
        assert ledger.consistency_proof(p["old_size"], p["new_size"]) == p["proof"]
        merkle.verify_consistency(p["old_size"], p["new_size"], bytes.fromhex(g["roots"][str(p["old_size"])]),
                                  bytes.fromhex(g["roots"][str(p["new_size"])]), [bytes.fromhex(h) for h in p["proof"]])
    # the final checkpoint: the whole log, signed by the announced auctioneer
    cp = ledger.latest_checkpoint()
    assert (cp.log_id, cp.size, cp.root) == (g["log_id"], g["entries"], check.root)
    cp.verify(V["keys"]["auctioneer"]["public"])


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_log_in_sqlite_opens_for_writing(tmp_path, name):
    storage = SQLiteStorage(tmp_path / "golden.db")
    storage.append_many([(e, None) for e in read_entries(name)])
    storage.close()
    with Ledger.open(tmp_path / "golden.db") as ledger:  # a writer replays the chain before anything
        assert ledger.root() == V["golden_logs"][name]["roots"][str(len(ledger))]


def test_golden_honest_log_verifies_and_audits_valid():
    g = V["golden_logs"]["honest"]
    ledger = load("honest")
    report = verify_log(ledger)
    assert report["ok"], report
    assert [c["check"] for c in report["checks"]] == ["chain", "checkpoint", "public checks"]
    assert report["checkpoint"]["size"] == g["entries"]
    st = read_state(ledger)
    assert st.rounds_done == 4 and st.breaches == [] and set(st.reveals) == {0, 1, 2}
    assert st.rejections[3] == {1: "no_opening", 2: "outside_support"} and set(st.disputes[3]) == {2}
    # the audit draw from the revealed seeds and the log id
    assert {str(i): str(e.data["seed"]) for i, e in st.reveals.items()} == g["seeds"]
    assert draw_digest(g["log_id"], {i: str(e.data["seed"]) for i, e in st.reveals.items()}).hex() == g["audit"]["draw_digest"]
    draw = audit_draw(st)
    assert draw.rounds == g["audit"]["audited_rounds"] and draw.withheld == []
    rep = Auditor(ledger, outcome=second_price).audit()
    assert rep.status == g["audit"]["status"] == "valid", rep.to_dict()
    assert rep.rounds == g["audit"]["audited_rounds"] and all(v.valid for v in rep.verdicts)
    assert rep.penalty_due == 0.0 and rep.breaches == []


def test_golden_false_rejection_log_is_invalid_naming_the_false_rejection():
    g = V["golden_logs"]["false_rejection"]
    ledger = load("false_rejection")
    (pinned,) = g["audit"]["breaches"]
    seq = pinned["seq"]
    assert seq == g["facts"]["false_rejection_seq"]  # the breach is the rejection itself
    rejection = ledger.get(seq)
    assert rejection.kind == "opening_rejected" and rejection.round == 3
    assert {k: v for k, v in rejection.data.items() if k != "evidence"} == {"bidder": 0, "reason": "opening_mismatch"}
    assert set(rejection.data["evidence"]) == {"bids", "salt", "signature"}
    # the log itself is well formed: the chain and the checkpoint hold; its public checks do not
    report = verify_log(ledger)
    assert not report["ok"]
    assert [c["check"] for c in report["checks"] if c["ok"]] == ["chain", "checkpoint"]
    assert report["failure"].startswith(f"public checks: ledger entry {seq}: round 3: bidder 0's rejection: opening_mismatch")
    assert "false rejection" in report["failure"]
    rep = Auditor(ledger, outcome=second_price).audit()
    assert rep.status == g["audit"]["status"] == "invalid"
    assert rep.penalty_due == 10.0
    assert [(b.seq, b.round, b.reason) for b in rep.breaches] == [(seq, 3, pinned["reason"])]
    assert "a false rejection" in pinned["reason"]
    # the audited rounds' outcomes themselves are right: the breach is the rejection
    assert rep.rounds == g["audit"]["audited_rounds"] and all(v.valid for v in rep.verdicts)


def test_the_two_golden_logs_are_a_fork_of_one_auction():
    honest, cheat = load("honest"), load("false_rejection")
    assert honest.log_id == cheat.log_id
    common = next(i for i, (a, b) in enumerate(zip(honest, cheat)) if a.hash != b.hash)
    assert common == V["golden_logs"]["false_rejection"]["facts"]["false_rejection_seq"]
    assert honest.root(common) == cheat.root(common)
    view = LogView(V["keys"]["auctioneer"]["public"])
    view.observe(honest)
    with pytest.raises(ForkError):
        view.observe(cheat)


def _flip(text, pos):
    b = bytearray(text.encode("utf-8"))
    b[pos] ^= 0x01  # ASCII stays ASCII
    return b.decode("utf-8")


@pytest.mark.parametrize("name", GOLDEN)
def test_flipping_one_byte_of_any_payload_fails_verification_naming_the_entry(name):
    entries = read_entries(name)
    assert all(e.payload.isascii() for e in entries)
    for e in entries:
        n = len(e.payload.encode())
        for pos in sorted({0, n // 2, n - 2}):
            changed = list(entries)
            changed[e.seq] = Entry(**{**e.to_dict(), "payload": _flip(e.payload, pos)})
            report = verify_log(load(name, changed))
            assert not report["ok"]
            assert report["failure"].startswith(f"chain: ledger entry {e.seq}: "), (e.seq, pos, report["failure"])
