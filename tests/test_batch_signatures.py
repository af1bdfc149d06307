"""Batch signatures (zkauction.protocol.entries): one Ed25519 signature over the RFC 9162 Merkle root
of many messages, one signature string per message ``b1.<index>.<count>.<sig>.<path>``.

The attacker holds every signature (the auctioneer hosts the log; a bidder may try to frame it): any
change to a signature string, or presenting it with another message, must verify nothing the key did
not sign, and never raise. The per-process cache of verified batches must not change any answer."""

from unittest import mock

import pytest

from zkauction.protocol import entries, merkle
from zkauction.protocol.log import (
    BATCH_DOMAIN,
    ChainError,
    Entry,
    Ledger,
    LedgerError,
    SignedCheckpoint,
    SigningKey,
    Statement,
    check_entry,
    statement_hash,
    verify_signature,
)


@pytest.fixture(scope="module")
def key():
    return SigningKey.from_seed(bytes(range(32)))


@pytest.fixture(scope="module")
def other():
    return SigningKey.from_seed(b"\x07" * 32)


def messages(k, tag=b"m"):
    return [tag + i.to_bytes(4, "big") for i in range(k)]


def parts(sig):
    """The five fields of a batch signature: prefix, index, count, Ed25519 signature, path elements."""
    prefix, index, count, ed, path = sig.split(".")
    return prefix, index, count, ed, [path[j:j + 64] for j in range(0, len(path), 64)]


def join(prefix, index, count, ed, path):
    return f"{prefix}.{index}.{count}.{ed}.{''.join(path)}"


def batch_root(msgs):
    return merkle.root_from_leaf_hashes([merkle.leaf_hash(m) for m in msgs])


def signed_message(msgs):
    """What the batch's one Ed25519 signature signs: the domain, the count (4 bytes) and the root."""
    return BATCH_DOMAIN + len(msgs).to_bytes(4, "big") + batch_root(msgs)


# --------------------------------------------------------------------------------------------------
# The format


def test_sign_many_gives_nothing_a_plain_signature_or_the_documented_batch_form(key):
    assert key.sign_many([]) == []
    assert key.sign_many([b"only"]) == [key.sign(b"only")]
    msgs = messages(5)
    sigs = key.sign_many(msgs)
    leaves = [merkle.leaf_hash(m) for m in msgs]
    root = merkle.root_from_leaf_hashes(leaves)
    for i, sig in enumerate(sigs):  # the reference RFC 9162 functions give the same root and paths
        prefix, index, count, ed, path = parts(sig)
        assert (prefix, index, count) == ("b1", str(i), "5")
        assert path == [p.hex() for p in merkle.inclusion_proof(leaves, i, 5)]
        merkle.verify_inclusion(leaves[i], i, 5, [bytes.fromhex(p) for p in path], root)
        assert verify_signature(key.public_hex, BATCH_DOMAIN + b"\x00\x00\x00\x05" + root, ed)  # the one Ed25519 signature
    assert len({parts(s)[3] for s in sigs}) == 1
    with pytest.raises(LedgerError, match="bytes"):
        key.sign_many([b"a", "b"])


@pytest.mark.parametrize("k", [2, 3, 5, 64])
def test_each_batch_signature_verifies_its_own_message_only(key, k):
    msgs = messages(k)
    sigs = key.sign_many(msgs)
    outside = [b"", b"m", b"n" + bytes(4), messages(k + 1)[k], batch_root(msgs)]
    for i, sig in enumerate(sigs):
        assert verify_signature(key.public_hex, msgs[i], sig)
        assert not any(verify_signature(key.public_hex, m, sig) for j, m in enumerate(msgs) if j != i)
        assert not any(verify_signature(key.public_hex, m, sig) for m in outside)


def test_a_message_signed_twice_in_one_batch_verifies_with_either_signature(key):
    msgs = [b"same", b"other", b"same"]
    sigs = key.sign_many(msgs)
    assert verify_signature(key.public_hex, b"same", sigs[0]) and verify_signature(key.public_hex, b"same", sigs[2])
    assert not verify_signature(key.public_hex, b"other", sigs[0])


# --------------------------------------------------------------------------------------------------
# Tampering


def tampered(sig):
    """Every change to one part of ``sig`` (a valid batch signature of 5 or more messages)."""
    prefix, index, count, ed, path = parts(sig)
    i, k = int(index), int(count)
    flipped = ed[:10] + ("0" if ed[10] != "0" else "1") + ed[11:]
    out = {
        "prefix B1": join("B1", index, count, ed, path), "prefix b2": join("b2", index, count, ed, path),
        "prefix b": join("b", index, count, ed, path), "no prefix": join("", index, count, ed, path),
        "index+1": join(prefix, i + 1, count, ed, path), "index-1": join(prefix, i - 1, count, ed, path),
        "index=count": join(prefix, k, count, ed, path), "negative index": join(prefix, f"-{i}", count, ed, path),
        "index with sign": join(prefix, f"+{i}", count, ed, path), "index leading zero": join(prefix, f"0{i}", count, ed, path),
        "empty index": join(prefix, "", count, ed, path), "hex index": join(prefix, hex(i), count, ed, path),
        "count+1": join(prefix, index, k + 1, ed, path), "count-1": join(prefix, index, k - 1, ed, path),
        "count 2**20+1": join(prefix, index, 2**20 + 1, ed, path), "count 1": join(prefix, 0, 1, ed, []),
        "count 0": join(prefix, 0, 0, ed, []), "negative count": join(prefix, index, f"-{k}", ed, path),
        "count leading zero": join(prefix, index, f"0{k}", ed, path), "empty count": join(prefix, index, "", ed, path),
        "count with space": join(prefix, index, f" {k}", ed, path), "unicode digit count": join(prefix, index, "٥", ed, path),
        "flipped signature": join(prefix, index, count, flipped, path),
        "signature of zeros": join(prefix, index, count, "0" * 128, path),
        "short signature": join(prefix, index, count, ed[:-2], path), "long signature": join(prefix, index, count, ed + "00", path),
        "non-hex signature": join(prefix, index, count, "g" + ed[1:], path),
        "empty signature": join(prefix, index, count, "", path),
        "missing path element": join(prefix, index, count, ed, path[:-1]),
        "extra path element": join(prefix, index, count, ed, path + [path[0]]),
        "path elements swapped": join(prefix, index, count, ed, path[::-1]),
        "half a path element": join(prefix, index, count, ed, path + ["ab" * 16]),
        "non-hex path": join(prefix, index, count, ed, ["zz" * 32] + path[1:]),
        "empty path": join(prefix, index, count, ed, []),
        "extra dot": sig + ".", "dot inside path": join(prefix, index, count, ed, [path[0] + "."] + path[1:]),
        "leading dot": "." + sig, "trailing newline": sig + "\n", "leading space": " " + sig,
        "dots only": "....", "empty": "", "four parts": f"{prefix}.{index}.{count}.{ed}",
        "six parts": sig + ".00", "separator comma": sig.replace(".", ",", 1),
    }
    for j, p in enumerate(path):
        p2 = p[:-1] + ("0" if p[-1] != "0" else "1")
        out[f"path[{j}] changed"] = join(prefix, index, count, ed, path[:j] + [p2] + path[j + 1:])
        out[f"path[{j}] dropped"] = join(prefix, index, count, ed, path[:j] + path[j + 1:])
    return out


def test_tampering_with_any_part_verifies_nothing_and_never_raises(key):
    msgs = messages(7)
    sigs = key.sign_many(msgs)
    for i in (0, 3, 6):
        for what, bad in tampered(sigs[i]).items():
            for m in msgs + [b""]:
                assert verify_signature(key.public_hex, m, bad) is False, (i, what, m)
        assert verify_signature(key.public_hex, msgs[i], sigs[i])  # the untouched one still verifies


def test_uppercase_hex_is_the_same_signature_but_the_prefix_is_exact(key):
    msgs = messages(3)
    prefix, index, count, ed, path = parts(key.sign_many(msgs)[1])
    assert verify_signature(key.public_hex, msgs[1], join(prefix, index, count, ed.upper(), [p.upper() for p in path]))
    assert not verify_signature(key.public_hex, msgs[1], join(prefix.upper(), index, count, ed, path))


def test_malformed_arguments_are_false_never_an_exception(key):
    msgs = messages(3)
    sig = key.sign_many(msgs)[0]
    for public, message, signature in [(None, msgs[0], sig), ("zz", msgs[0], sig), (key.public_hex[:-2], msgs[0], sig),
                                       (key.public_hex, None, sig), (key.public_hex, "text", sig),
                                       (key.public_hex, msgs[0], None), (key.public_hex, msgs[0], b"b1"),
                                       ([], msgs[0], sig), (key.public_hex, msgs[0], "b1." + "9" * 5000)]:
        assert verify_signature(public, message, signature) is False


def test_a_path_from_another_batch_or_another_index_fails(key):
    a, b = messages(5, b"a"), messages(5, b"b")
    sa, sb = key.sign_many(a), key.sign_many(b)
    pa, pb = parts(sa[2]), parts(sb[2])
    assert not verify_signature(key.public_hex, a[2], join(*pa[:4], pb[4]))  # A's signature, B's path
    assert not verify_signature(key.public_hex, b[2], join(*pa[:4], pb[4]))
    assert not verify_signature(key.public_hex, b[2], join(*pb[:3], pa[3], pb[4]))  # B's path, A's signature
    for j in (0, 1, 3, 4):  # message 2 under message j's index (and path), or j's index with 2's path
        pj = parts(sa[j])
        assert not verify_signature(key.public_hex, a[2], sa[j])
        assert not verify_signature(key.public_hex, a[2], join(pa[0], j, *pa[2:]))
        assert not verify_signature(key.public_hex, a[j], join(pj[0], 2, *pj[2:]))


def test_the_count_is_signed_so_a_path_of_the_same_shape_under_another_count_fails(key):
    """Leaf 0 of 7 and leaf 0 of 8 have paths of the same shape, giving the same root: only the
    signed count stops ``b1.0.8...`` from verifying (a second spelling of message 0's signature)."""
    msgs = messages(7)
    prefix, index, count, ed, path = parts(key.sign_many(msgs)[0])
    assert merkle.inclusion_proof([merkle.leaf_hash(m) for m in msgs + [b"x"]], 0, 8)[:2] == [bytes.fromhex(p) for p in path[:2]]
    assert not verify_signature(key.public_hex, msgs[0], join(prefix, index, 8, ed, path))
    assert verify_signature(key.public_hex, msgs[0], join(prefix, index, count, ed, path))


def test_domain_separation_between_plain_and_batch_signatures(key):
    msgs = messages(4)
    sigs = key.sign_many(msgs)
    root, signed = batch_root(msgs), signed_message(msgs)
    prefix, index, count, ed, path = parts(sigs[1])
    assert verify_signature(key.public_hex, signed, ed)
    for plain in (key.sign(root), key.sign(BATCH_DOMAIN + root), key.sign(signed[len(BATCH_DOMAIN):]),
                  key.sign(BATCH_DOMAIN[:-1] + signed[len(BATCH_DOMAIN):])):  # no domain, no count, another domain
        assert not verify_signature(key.public_hex, msgs[1], join(prefix, index, count, plain, path))
    for m in msgs + [root, BATCH_DOMAIN + root]:  # the batch's Ed25519 signature is no other message's plain one
        assert not verify_signature(key.public_hex, m, ed)
    for m in [root, signed, BATCH_DOMAIN + root]:  # and a batch signature is the signature of its messages only
        assert not any(verify_signature(key.public_hex, m, s) for s in sigs)
    # what this package signs plain never starts with the batch domain (statement hashes are 32 bytes)
    from zkauction.protocol.state import opening_message

    assert not SignedCheckpoint.message("00" * 32, 1, "00" * 32).startswith(BATCH_DOMAIN)
    assert not opening_message("00" * 32, 1, 0, [0.5], "00" * 32).startswith(BATCH_DOMAIN)
    assert len(bytes.fromhex(statement_hash("", 1, "k", "{}", key.public_hex))) == 32 < len(BATCH_DOMAIN) + 32


def test_a_batch_signature_of_one_key_does_not_verify_under_another(key, other):
    msgs = messages(3)
    for i, sig in enumerate(key.sign_many(msgs)):
        assert verify_signature(key.public_hex, msgs[i], sig)
        assert not verify_signature(other.public_hex, msgs[i], sig)
    for i, sig in enumerate(other.sign_many(msgs)):  # same messages, other key: another signature
        assert not verify_signature(key.public_hex, msgs[i], sig)


# --------------------------------------------------------------------------------------------------
# The cache


def test_the_cache_is_keyed_by_the_recomputed_root_and_keeps_no_failure(key, other):
    msgs = messages(5)
    sigs = key.sign_many(msgs)
    entries._BATCH_VERIFIED.clear()
    assert verify_signature(key.public_hex, msgs[0], sigs[0])  # cached now
    assert not verify_signature(key.public_hex, msgs[0] + b"!", sigs[0])  # same string, other message
    assert not verify_signature(other.public_hex, msgs[0], sigs[0])  # same root and signature, other key
    assert len(entries._BATCH_VERIFIED) == 1
    # a forgery that failed once keeps failing, and is not remembered
    forged = join(*parts(sigs[2])[:3], "ab" * 64, parts(sigs[2])[4])
    for _ in range(2):
        assert not verify_signature(key.public_hex, msgs[2], forged)
    assert len(entries._BATCH_VERIFIED) == 1
    # a valid signature checked after failures still verifies
    fresh = messages(3, b"f")
    fresh_sigs = key.sign_many(fresh)
    assert not verify_signature(key.public_hex, fresh[0], fresh_sigs[1])
    assert verify_signature(key.public_hex, fresh[0], fresh_sigs[0])


def test_a_full_cache_is_cleared_and_answers_stay_the_same(key, monkeypatch):
    monkeypatch.setattr(entries, "_BATCH_CACHE_SIZE", 2)
    entries._BATCH_VERIFIED.clear()
    batches = [(m, key.sign_many(m)) for m in (messages(2, b"x"), messages(2, b"y"), messages(2, b"z"))]
    for _ in range(2):
        for msgs, sigs in batches:
            assert verify_signature(key.public_hex, msgs[1], sigs[1])
            assert len(entries._BATCH_VERIFIED) <= 2


def test_a_batch_of_64_costs_one_ed25519_verification(key):
    ledger = Ledger.in_memory()
    ledger.append("announcement", {"auction": "count"}, key)
    placed = ledger.append_many([("outcome", {"round": r}, key, r, None) for r in range(1, 65)], batch_sign=True)
    assert len({parts(e.signature)[3] for e in placed}) == 1
    entries._BATCH_VERIFIED.clear()
    with mock.patch.object(entries, "_ed25519_verify", wraps=entries._ed25519_verify) as ed25519_verify:
        for e in placed:
            check_entry(e, log_id=ledger.log_id)
        assert ed25519_verify.call_count == 1
        with pytest.raises(ChainError, match="signature"):  # a failure costs a verification every time
            check_entry(Entry(**{**placed[5].to_dict(), "signature": placed[6].signature}), log_id=ledger.log_id)
        assert ed25519_verify.call_count == 2


# --------------------------------------------------------------------------------------------------
# The log


def interleaved(a, b, n=6, first=1):
    """Items from two keys, alternating: an announcement by ``a`` first."""
    items = [("announcement", {"auction": "batch"}, a, None, None)]
    for r in range(first, first + n):
        items.append(("outcome", {"round": r}, a, r, f"outcome/{r}"))
        items.append(("bid_commitment", {"bidder": 0, "round": r}, b, r, None))
    return items


def test_append_many_batch_signs_per_key_and_everything_verifies(key, other):
    ledger = Ledger.in_memory()
    placed = ledger.append_many(interleaved(key, other), batch_sign=True)
    assert [e.signer for e in placed] == [key.public_hex] + [key.public_hex, other.public_hex] * 6
    assert len(placed[0].signature) == 128  # entry 0 (defines the log id) is signed alone
    by_key = {}
    for e in placed[1:]:
        prefix, index, count, ed, _ = parts(e.signature)
        by_key.setdefault(e.signer, []).append((int(index), int(count), ed))
    for signer, sigs in by_key.items():  # one Ed25519 signature per key, indices in log order
        assert [i for i, _, _ in sigs] == list(range(6)) and {(c, ed) for _, c, ed in sigs} == {(6, sigs[0][2])}
    for e in placed:
        check_entry(e, log_id=ledger.log_id)
    assert ledger.verify_chain().n_entries == 13
    more = ledger.append_many(interleaved(key, other, 2, first=7)[1:], batch_sign=True)  # onto a log that has an id
    assert all(e.signature.startswith("b1.0.2.") or e.signature.startswith("b1.1.2.") for e in more)
    replica = Ledger.in_memory()
    assert replica.replicate(ledger.entries()) == 17
    assert (replica.root(), replica.head()) == (ledger.root(), ledger.head())
    assert replica.verify_chain().n_entries == 17


def test_batch_sign_false_keeps_the_plain_signatures(key, other):
    a, b = Ledger.in_memory(), Ledger.in_memory()
    plain = a.append_many(interleaved(key, other))
    assert [e.to_dict() for e in plain] == [e.to_dict() for e in b.append_many(interleaved(key, other), batch_sign=False)]
    assert all(len(e.signature) == 128 for e in plain)
    batched = Ledger.in_memory().append_many(interleaved(key, other), batch_sign=True)
    assert [e.hash for e in batched] == [e.hash for e in plain]  # the signature is not part of the entry hash


def test_a_single_entry_per_key_gets_a_plain_signature(key, other):
    ledger = Ledger.in_memory()
    ledger.append("announcement", {"auction": "one"}, key)
    placed = ledger.append_many([("outcome", {"r": 1}, key, 1, None), ("x", {"r": 1}, other, 1, None),
                                 ("y", {"r": 1}, other, 1, None)], batch_sign=True)
    assert len(placed[0].signature) == 128 and placed[1].signature.startswith("b1.0.2.")
    assert ledger.verify_chain().n_entries == 4


def test_swapped_neighbour_signatures_are_named_by_verify_chain(key, other):
    ledger = Ledger.in_memory()
    ledger.append_many(interleaved(key, other), batch_sign=True)
    stored = ledger.storage._entries
    # entries 1 and 3 are both the auctioneer's, signed in one batch: swap their signature strings
    stored[1], stored[3] = (Entry(**{**stored[1].to_dict(), "signature": stored[3].signature}),
                            Entry(**{**stored[3].to_dict(), "signature": stored[1].signature}))
    with pytest.raises(ChainError, match="ledger entry 1: signature") as e:
        Ledger(ledger.storage).verify_chain()
    assert e.value.seq == 1
    with pytest.raises(ChainError, match="ledger entry 1: signature"):
        Ledger.in_memory().replicate(ledger.entries())
    # the other key's batch signature on the auctioneer's entry: the signer does not match
    stored[1] = Entry(**{**stored[1].to_dict(), "signature": stored[2].signature})
    with pytest.raises(ChainError, match="ledger entry 1: signature"):
        ledger.verify_chain()


def test_statements_signed_as_a_batch_are_placed_and_a_changed_one_is_refused(key, other):
    ledger = Ledger.in_memory()
    ledger.append("announcement", {"auction": "remote"}, key)
    items = [("bid_commitment", {"bidder": 0, "commitment": f"{r:064x}"}, r, f"commit/{r}") for r in range(1, 6)]
    sts = Statement.sign_many(other, ledger.log_id, items)
    assert [st.unique for st in sts] == [f"commit/{r}" for r in range(1, 6)]
    for st in sts:
        st.check(ledger.log_id)
        assert Statement.from_dict(st.to_dict(), st.unique) == st
    placed = ledger.append_signed(sts[:2])
    assert [e.signature for e in placed] == [st.signature for st in sts[:2]]
    before = (len(ledger), ledger.head(), ledger.root())
    changed = Statement(**{**sts[2].__dict__, "payload": sts[2].payload.replace('"bidder":0', '"bidder":1')})
    for bad in (changed, Statement(**{**sts[2].__dict__, "round": 4}), Statement(**{**sts[2].__dict__, "signature": sts[3].signature}),
                Statement(**{**sts[2].__dict__, "signer": key.public_hex})):
        with pytest.raises(LedgerError, match="does not verify"):
            ledger.append_signed([sts[2], bad])
        assert (len(ledger), ledger.head(), ledger.root()) == before  # nothing written
    ledger.append_signed(sts[2:])
    assert ledger.verify_chain().n_entries == 6
    with pytest.raises(LedgerError, match="kind"):
        Statement.sign_many(other, ledger.log_id, [("x", {}, 1, None), ("", {}, 1, None)])
    assert Statement.sign_many(other, ledger.log_id, []) == []


def test_checkpoints_and_statements_accept_batch_signatures_of_any_length(key, tmp_path):
    """No check assumes a 128-character signature: a batch-signed entry survives SQLite storage and
    a batch-signed checkpoint verifies."""
    with Ledger.open(tmp_path / "log.db") as ledger:
        ledger.append("announcement", {"auction": "stored"}, key)
        ledger.append_many([("outcome", {"round": r}, key, r, None) for r in range(1, 1001)], batch_sign=True)
        assert max(len(e.signature) for e in ledger) == len("b1.999.1000.") + 128 + 1 + 64 * 10
    with Ledger.open(tmp_path / "log.db", writer=False) as reader:
        assert reader.verify_chain().n_entries == 1001
        msgs = [SignedCheckpoint.message(reader.log_id, n, reader.root(n)) for n in (1, 1001)]
        for (n, msg), sig in zip(((1, msgs[0]), (1001, msgs[1])), key.sign_many(msgs)):
            SignedCheckpoint(reader.log_id, n, reader.root(n), key.public_hex, sig).verify(key.public_hex)


def test_the_service_accepts_the_batch_form_and_leaves_its_check_to_verify_signature(key):
    """The HTTP models (zkauction.service.server) take a batch signature where they take a plain one;
    their pattern only bounds the text, the check is verify_signature's."""
    from pydantic import ValidationError

    from zkauction.service.server import PassIn, StatementIn

    st = Statement.sign_many(key, "00" * 32, [("x", {"r": r}, r, None) for r in range(1, 65)])[63]
    assert StatementIn(**st.to_dict()).signature == st.signature
    assert PassIn(bidder=0, signature=key.sign_many(messages(2))[1]).signature.startswith("b1.1.2.")
    assert PassIn(bidder=0, signature=key.sign(b"m")).signature == key.sign(b"m")
    for bad in ("b1.0.2." + "ab" * 64, "B1.0.2." + "ab" * 64 + ".", key.sign(b"m") + "\n", "b1.0.2." + "ab" * 64 + "." + "0" * 1284):
        with pytest.raises(ValidationError, match="signature"):
            PassIn(bidder=0, signature=bad)
