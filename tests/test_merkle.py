"""zkauction.protocol.merkle against the published vectors of transparency-dev/merkle (the Go
Certificate Transparency / transparency-log library): every expected hash and proof is read from
tests/data/merkle/ (README.md there names the source files and commit); the mutations that must
fail are the ones upstream's proof generator (cmd/proofgen) applies, plus a few 32-byte ones."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkauction.protocol import merkle
from zkauction.protocol.merkle import (
    EMPTY_ROOT,
    ConsistencyError,
    InclusionError,
    MerkleError,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

DATA = Path(__file__).parent / "data" / "merkle"


def _load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def _hexes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


TREE8 = _load("tree_8.json")
LEAF_INPUTS = _hexes(TREE8["leaf_inputs"])
NODES = [_hexes(level) for level in TREE8["node_hashes"]]
LEAVES = NODES[0]  # published leaf hashes of LEAF_INPUTS
ROOTS = _hexes(TREE8["roots"])  # ROOTS[n]: root of the first n leaves, n = 0..8
INCLUSION = _load("inclusion_proofs.json")["vectors"]
CONSISTENCY = _load("consistency_proofs.json")["vectors"]
HASHER = _load("hasher.json")
EDGE = _load("edge_cases.json")
NAMED = {name: bytes.fromhex(value) for name, value in EDGE["named_hashes"].items()}
MUT = EDGE["mutations"]
SOME_HASH, EMPTY_TREE_HASH = bytes.fromhex(MUT["some_hash"]), bytes.fromhex(MUT["empty_tree_hash"])
ACC = _load("accumulated_130.json")

# The 130-leaf tree of the accumulated vectors: leaf i is the single byte i.
LEAVES130 = [leaf_hash(bytes([i])) for i in range(ACC["leaf_count"])]
TREE130 = MerkleTree.from_leaf_hashes(LEAVES130)
U64 = 2**64 - 1  # upstream's sizes and indices are uint64: 0 - 1 wraps to this


def _inclusion_id(v: dict) -> str:
    return f"leaf{v['index']}-size{v['size']}"


def _consistency_id(v: dict) -> str:
    return f"{v['old_size']}-{v['new_size']}"


def _flip(proof: list[bytes], i: int, mask: int) -> list[bytes]:
    return [bytes([p[0] ^ mask]) + p[1:] if j == i else p for j, p in enumerate(proof)]


def _flip_last_bit(h: bytes) -> bytes:
    return h[:-1] + bytes([h[-1] ^ 1])


# --- hashing, roots --------------------------------------------------------------------------


def test_hasher_vectors():
    assert EMPTY_ROOT == bytes.fromhex(HASHER["empty_root"]) == ROOTS[0]
    for case in HASHER["leaf"]:
        assert leaf_hash(bytes.fromhex(case["data"])) == bytes.fromhex(case["hash"])
    for case in HASHER["node"]:
        left, right = bytes.fromhex(case["left"]), bytes.fromhex(case["right"])
        assert node_hash(left, right) == bytes.fromhex(case["hash"])
    assert leaf_hash(bytes.fromhex(EDGE["data_leaf"])) == NAMED["DATA_LEAF_HASH"]


def test_leaf_hashes_of_published_inputs():
    assert [leaf_hash(d) for d in LEAF_INPUTS] == LEAVES


def test_every_published_perfect_subtree_hash():
    for level, hashes in enumerate(NODES):
        width = 1 << level
        for i, expected in enumerate(hashes):
            assert root_from_leaf_hashes(LEAVES[i * width : (i + 1) * width]) == expected, (level, i)


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_every_published_root(size):
    assert root_from_leaf_hashes(LEAVES[:size]) == ROOTS[size]
    assert MerkleTree.from_leaf_hashes(LEAVES).root(size) == ROOTS[size]
    assert MerkleTree.from_leaf_hashes(LEAVES[:size]).root() == ROOTS[size]


def test_appending_gives_every_published_root():
    tree = MerkleTree()
    assert tree.root() == ROOTS[0] and len(tree) == 0
    for i, h in enumerate(LEAVES):
        assert tree.append(h) == i
        assert tree.root() == ROOTS[i + 1]
        assert [tree.root(n) for n in range(i + 2)] == ROOTS[: i + 2]
    assert [tree.leaf_hash_at(i) for i in range(tree.size)] == LEAVES


# --- inclusion -------------------------------------------------------------------------------


@pytest.mark.parametrize("v", INCLUSION, ids=_inclusion_id)
def test_generators_give_published_inclusion_proof(v):
    expected = _hexes(v["proof"])
    assert inclusion_proof(LEAVES, v["index"], v["size"]) == expected
    assert MerkleTree.from_leaf_hashes(LEAVES).inclusion_proof(v["index"], v["size"]) == expected
    assert MerkleTree.from_leaf_hashes(LEAVES[: v["size"]]).inclusion_proof(v["index"]) == expected


@pytest.mark.parametrize("v", INCLUSION, ids=_inclusion_id)
def test_published_inclusion_proof_verifies(v):
    verify_inclusion(LEAVES[v["index"]], v["index"], v["size"], _hexes(v["proof"]), ROOTS[v["size"]])


def _inclusion_mutations(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes):
    """upstream cmd/proofgen invalidInclusionProof, then three 32-byte mutations of our own."""
    yield "leafIdx sub 1", ((index - 1) & U64, size, root, leaf, proof)
    yield "leafIdx plus 1", (index + 1, size, root, leaf, proof)
    yield "leafIdx XOR 2", (index ^ 2, size, root, leaf, proof)
    yield "treeSize mul 2", (index, size * 2, root, leaf, proof)
    yield "treeSize div 2", (index, size // 2, root, leaf, proof)
    yield "wrong leaf", (index, size, root, bytes.fromhex(MUT["wrong_leaf"]), proof)
    yield "empty root", (index, size, EMPTY_TREE_HASH, leaf, proof)
    yield "random root", (index, size, SOME_HASH, leaf, proof)
    yield "trailing garbage", (index, size, root, leaf, [*proof, b""])
    yield "trailing root", (index, size, root, leaf, [*proof, root])
    yield "preceding garbage", (index, size, root, leaf, [b"", *proof])
    yield "preceding root", (index, size, root, leaf, [root, *proof])
    for i in range(len(proof)):
        yield f"modified proof[{i}] bit 3", (index, size, root, leaf, _flip(proof, i, MUT["inclusion_flip_mask"]))
    if proof:
        yield "removed component", (index, size, root, leaf, proof[:-1])
    if len(proof) > 1:
        yield "inserted component", (index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]])
    yield "ours: root bit flipped", (index, size, _flip_last_bit(root), leaf, proof)
    yield "ours: leaf bit flipped", (index, size, root, _flip_last_bit(leaf), proof)
    if len(proof) > 1:
        yield "ours: first two swapped", (index, size, root, leaf, [proof[1], proof[0], *proof[2:]])


INCLUSION_MUTANTS = [
    pytest.param(args, id=f"{_inclusion_id(v)}:{desc}")
    for v in INCLUSION
    for desc, args in _inclusion_mutations(
        v["index"], v["size"], _hexes(v["proof"]), ROOTS[v["size"]], LEAVES[v["index"]]
    )
]


@pytest.mark.parametrize("args", INCLUSION_MUTANTS)
def test_mutated_inclusion_proof_fails(args):
    index, size, root, leaf, proof = args
    with pytest.raises(InclusionError):
        verify_inclusion(leaf, index, size, proof, root)


@pytest.mark.parametrize(
    "case",
    EDGE["inclusion_single_entry"] + EDGE["inclusion_static"],
    ids=lambda c: f"{c['index']}/{c['size']}:{c['desc']}",
)
def test_published_inclusion_edge_cases(case):
    args = (NAMED[case["leaf_hash"]], case["index"], case["size"], [], NAMED[case["root"]])
    if case["want_error"]:
        with pytest.raises(InclusionError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


def test_inclusion_error_messages():
    proof = _hexes(INCLUSION[-1]["proof"])  # leaf 5 of 8
    with pytest.raises(InclusionError, match="leaf index 8 >= tree size 8"):
        verify_inclusion(LEAVES[5], 8, 8, proof, ROOTS[8])
    with pytest.raises(InclusionError, match="wrong proof length 2 .* expected 3"):
        verify_inclusion(LEAVES[5], 5, 8, proof[:2], ROOTS[8])
    with pytest.raises(InclusionError, match="root mismatch"):
        verify_inclusion(LEAVES[5], 5, 8, proof, ROOTS[7])
    with pytest.raises(InclusionError, match="leaf hash must be 32 bytes"):
        verify_inclusion(LEAVES[5][:31], 5, 8, proof, ROOTS[8])
    with pytest.raises(InclusionError, match="non-negative"):
        verify_inclusion(LEAVES[5], -1, 8, proof, ROOTS[8])


def test_inclusion_generator_arguments():
    tree = MerkleTree.from_leaf_hashes(LEAVES)
    for bad in [(0, 0), (8, 8), (3, 2), (-1, 4)]:
        with pytest.raises(InclusionError):
            inclusion_proof(LEAVES, *bad)
        with pytest.raises(InclusionError):
            tree.inclusion_proof(*bad)
    with pytest.raises(InclusionError, match="9 > "):
        inclusion_proof(LEAVES, 0, 9)
    with pytest.raises(InclusionError, match="9 > current tree size 8"):
        tree.inclusion_proof(0, 9)
    with pytest.raises(InclusionError):
        MerkleTree().inclusion_proof(0)


# --- consistency -----------------------------------------------------------------------------


@pytest.mark.parametrize("v", CONSISTENCY, ids=_consistency_id)
def test_generators_give_published_consistency_proof(v):
    expected = _hexes(v["proof"])
    assert consistency_proof(LEAVES, v["old_size"], v["new_size"]) == expected
    assert MerkleTree.from_leaf_hashes(LEAVES).consistency_proof(v["old_size"], v["new_size"]) == expected
    assert MerkleTree.from_leaf_hashes(LEAVES[: v["new_size"]]).consistency_proof(v["old_size"]) == expected


@pytest.mark.parametrize("v", CONSISTENCY, ids=_consistency_id)
def test_published_consistency_proof_verifies(v):
    old, new = v["old_size"], v["new_size"]
    verify_consistency(old, new, ROOTS[old], ROOTS[new], _hexes(v["proof"]))


def _consistency_mutations(old: int, new: int, root1: bytes, root2: bytes, proof: list[bytes]):
    """upstream cmd/proofgen invalidConsistencyProof, then four mutations of our own."""
    yield "size1 sub 1", ((old - 1) & U64, new, root1, root2, proof)
    yield "size1 plus 1", (old + 1, new, root1, root2, proof)
    yield "size1 XOR 2", (old ^ 2, new, root1, root2, proof)
    yield "size2 mul 2", (old, new * 2, root1, root2, proof)
    yield "size2 div 2", (old, new // 2, root1, root2, proof)
    yield "wrong root1", (old, new, bytes.fromhex(MUT["wrong_root"]), root2, proof)
    yield "wrong root2", (old, new, root1, bytes.fromhex(MUT["wrong_root"]), proof)
    yield "swapped roots", (old, new, root2, root1, proof)
    yield "empty proof", (old, new, root1, root2, [])
    yield "trailing garbage", (old, new, root1, root2, [*proof, b""])
    yield "trailing root1", (old, new, root1, root2, [*proof, root1])
    yield "trailing root2", (old, new, root1, root2, [*proof, root2])
    yield "preceding garbage", (old, new, root1, root2, [b"", *proof])
    yield "preceding root1", (old, new, root1, root2, [root1, *proof])
    yield "preceding root2", (old, new, root1, root2, [root2, *proof])
    yield "preceding proof[0]", (old, new, root1, root2, [proof[0], *proof])
    yield "truncated proof", (old, new, root1, root2, proof[:-1])
    for i in range(len(proof)):
        yield f"modified proof[{i}] bit 4", (old, new, root1, root2, _flip(proof, i, MUT["consistency_flip_mask"]))
    yield "ours: root1 bit flipped", (old, new, _flip_last_bit(root1), root2, proof)
    yield "ours: root2 bit flipped", (old, new, root1, _flip_last_bit(root2), proof)
    yield "ours: first component removed", (old, new, root1, root2, proof[1:])
    yield "ours: component inserted", (old, new, root1, root2, [proof[0], SOME_HASH, *proof[1:]])


CONSISTENCY_MUTANTS = [
    pytest.param(args, id=f"{_consistency_id(v)}:{desc}")
    for v in CONSISTENCY
    if v["proof"]  # as upstream: the trivial (1, 1) vector has no proof to corrupt
    for desc, args in _consistency_mutations(
        v["old_size"], v["new_size"], ROOTS[v["old_size"]], ROOTS[v["new_size"]], _hexes(v["proof"])
    )
]


@pytest.mark.parametrize("args", CONSISTENCY_MUTANTS)
def test_mutated_consistency_proof_fails(args):
    old, new, root1, root2, proof = args
    with pytest.raises(ConsistencyError):
        verify_consistency(old, new, root1, root2, proof)


@pytest.mark.parametrize("case", EDGE["consistency_static"], ids=lambda c: c["desc"])
def test_published_consistency_edge_cases(case):
    args = (case["old_size"], case["new_size"], NAMED[case["old_root"]], NAMED[case["new_root"]])
    proof = [NAMED[p] for p in case["proof"]]
    if case["want_error"]:
        with pytest.raises(ConsistencyError):
            verify_consistency(*args, proof)
    else:
        verify_consistency(*args, proof)


@pytest.mark.parametrize("new", range(len(ROOTS)))
def test_consistency_from_the_empty_tree(new):
    """This module's convention (RFC 9162 defines PROOF(m, D_n) for 0 < m < n only): the empty
    tree's proof is empty and verifies against its root SHA-256() and nothing else."""
    assert consistency_proof(LEAVES, 0, new) == []
    assert MerkleTree.from_leaf_hashes(LEAVES).consistency_proof(0, new) == []
    verify_consistency(0, new, ROOTS[0], ROOTS[new], [])
    with pytest.raises(ConsistencyError, match="wrong proof length 1"):
        verify_consistency(0, new, ROOTS[0], ROOTS[new], [ROOTS[0]])
    with pytest.raises(ConsistencyError, match="old root mismatch"):
        verify_consistency(0, new, ROOTS[1], ROOTS[new], [])
    if new:
        with pytest.raises(ConsistencyError, match=f"old size {new} > new size 0"):
            verify_consistency(new, 0, ROOTS[new], ROOTS[0], [])


@pytest.mark.parametrize("size", range(1, len(ROOTS)))
def test_consistency_with_equal_sizes(size):
    assert consistency_proof(LEAVES, size, size) == []
    assert MerkleTree.from_leaf_hashes(LEAVES).consistency_proof(size, size) == []
    verify_consistency(size, size, ROOTS[size], ROOTS[size], [])
    with pytest.raises(ConsistencyError, match="root mismatch"):
        verify_consistency(size, size, ROOTS[size], ROOTS[size - 1], [])
    with pytest.raises(ConsistencyError, match="wrong proof length 1"):
        verify_consistency(size, size, ROOTS[size], ROOTS[size], [ROOTS[size]])


def test_consistency_error_messages():
    v = next(c for c in CONSISTENCY if (c["old_size"], c["new_size"]) == (6, 8))
    proof = _hexes(v["proof"])
    with pytest.raises(ConsistencyError, match="old size 8 > new size 6"):
        verify_consistency(8, 6, ROOTS[8], ROOTS[6], proof)
    with pytest.raises(ConsistencyError, match="wrong proof length 4 .* expected 3"):
        verify_consistency(6, 8, ROOTS[6], ROOTS[8], [*proof, proof[0]])
    with pytest.raises(ConsistencyError, match="old root mismatch"):
        verify_consistency(6, 8, ROOTS[5], ROOTS[8], proof)
    with pytest.raises(ConsistencyError, match="new root mismatch"):
        verify_consistency(6, 8, ROOTS[6], ROOTS[7], proof)
    with pytest.raises(ConsistencyError, match=r"proof\[2\] must be 32 bytes"):
        verify_consistency(6, 8, ROOTS[6], ROOTS[8], [*proof[:2], b""])


def test_consistency_generator_arguments():
    tree = MerkleTree.from_leaf_hashes(LEAVES)
    with pytest.raises(ConsistencyError, match="old size 5 > new size 4"):
        consistency_proof(LEAVES, 5, 4)
    with pytest.raises(ConsistencyError, match="old size 5 > new size 4"):
        tree.consistency_proof(5, 4)
    with pytest.raises(ConsistencyError, match="9 > "):
        consistency_proof(LEAVES, 1, 9)
    with pytest.raises(ConsistencyError, match="9 > current tree size 8"):
        tree.consistency_proof(1, 9)
    with pytest.raises(ConsistencyError, match="non-negative"):
        tree.consistency_proof(-1, 4)


# --- MerkleTree ------------------------------------------------------------------------------


def test_tree_argument_errors():
    tree = MerkleTree.from_leaf_hashes(LEAVES)
    with pytest.raises(MerkleError, match="9 > current tree size 8"):
        tree.root(9)
    with pytest.raises(MerkleError, match="32 bytes"):
        tree.append(LEAF_INPUTS[7])
    with pytest.raises(MerkleError):
        tree.leaf_hash_at(8)
    assert issubclass(InclusionError, MerkleError) and issubclass(ConsistencyError, MerkleError)
    assert issubclass(MerkleError, ValueError)


def test_tree_matches_reference_functions_for_every_size_index_and_pair_up_to_70():
    """MerkleTree (stored perfect subtrees) and the recursive RFC 9162 definitions are separate
    code; both are pinned to the published vectors above, and here to each other."""
    roots = [root_from_leaf_hashes(LEAVES130[:n]) for n in range(71)]
    for size in range(71):
        assert TREE130.root(size) == roots[size]
        for index in range(size):
            proof = TREE130.inclusion_proof(index, size)
            assert proof == inclusion_proof(LEAVES130, index, size), (index, size)
            verify_inclusion(LEAVES130[index], index, size, proof, roots[size])
        for old in range(size + 1):
            proof = TREE130.consistency_proof(old, size)
            assert proof == consistency_proof(LEAVES130, old, size), (old, size)
            verify_consistency(old, size, roots[old], roots[size], proof)


def _bit_ceil(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def _valid_subtrees(max_end: int):
    """upstream proof.isSubtreeValid over the loops of testonly/vectors_test.go."""
    for end in range(max_end + 1):
        for start in range(end + 1):
            if start == 0 or start == end or start % _bit_ceil(end - start) == 0:
                yield start, end


def test_accumulated_subtree_hashes_130():
    by_reference, by_tree = hashlib.sha256(), hashlib.sha256()
    for start, end in _valid_subtrees(ACC["leaf_count"]):
        reference_root = root_from_leaf_hashes(LEAVES130[start:end])
        tree = TREE130 if start == 0 else MerkleTree.from_leaf_hashes(LEAVES130[start:end])
        tree_root = tree.root(end - start)
        by_reference.update(b"[%d, %d) %s\n" % (start, end, reference_root.hex().encode()))
        by_tree.update(b"[%d, %d) %s\n" % (start, end, tree_root.hex().encode()))
    assert by_reference.hexdigest() == ACC["subtree_hash"]["sha256"]
    assert by_tree.hexdigest() == ACC["subtree_hash"]["sha256"]


def test_accumulated_subtree_inclusion_proofs_130():
    """Inclusion proofs for every leaf of every valid subtree of the 130-leaf tree (with start 0:
    every index of every tree size 1..130), by MerkleTree."""
    digest = hashlib.sha256()
    for start, end in _valid_subtrees(ACC["leaf_count"]):
        tree = TREE130 if start == 0 else MerkleTree.from_leaf_hashes(LEAVES130[start:end])
        for index in range(start, end):
            proof = tree.inclusion_proof(index - start, end - start)
            line = b"%d [%d, %d)" % (index, start, end) + b"".join(b" " + p.hex().encode() for p in proof)
            digest.update(line + b"\n")
    assert digest.hexdigest() == ACC["subtree_inclusion"]["sha256"]


def test_tree_costs_logarithmic_hashes(monkeypatch):
    """append: amortised O(1) node hashes; root, inclusion and consistency proofs for any past
    size: O(log n) node hashes (counted), not O(n)."""
    calls = [0]
    real = merkle.node_hash

    def counting(left: bytes, right: bytes) -> bytes:
        calls[0] += 1
        return real(left, right)

    monkeypatch.setattr(merkle, "node_hash", counting)
    n = 5000
    tree = MerkleTree.from_leaf_hashes(hashlib.sha256(b"%d" % i).digest() for i in range(n))
    assert calls[0] == n - n.bit_count()  # one hash per completed perfect subtree
    bound = 2 * n.bit_length() + 2
    for size in [1, 2, 3, 1000, 2047, 2048, 2049, 4095, 4096, 4097, 4999, 5000]:
        calls[0] = 0
        tree.root(size)
        assert calls[0] <= bound
        for index in {0, size // 3, size // 2, size - 1}:
            calls[0] = 0
            tree.inclusion_proof(index, size)
            assert calls[0] <= bound, (index, size, calls[0])
        for old in {1, size // 3, size // 2, size - 1, size}:
            calls[0] = 0
            tree.consistency_proof(old, size)
            assert calls[0] <= bound, (old, size, calls[0])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_flipped_bit_breaks_a_proof(data):
    size = data.draw(st.integers(2, len(LEAVES130)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = TREE130.inclusion_proof(index, size)
    i = data.draw(st.integers(0, len(proof) - 1), label="element")
    bit = data.draw(st.integers(0, 8 * merkle.HASH_SIZE - 1), label="bit")
    bad = [bytearray(p) for p in proof]
    bad[i][bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(InclusionError, match="root mismatch"):
        verify_inclusion(LEAVES130[index], index, size, [bytes(p) for p in bad], TREE130.root(size))
    old = data.draw(st.integers(1, size - 1), label="old")
    proof = TREE130.consistency_proof(old, size)
    i = data.draw(st.integers(0, len(proof) - 1), label="c-element")
    bad = [bytearray(p) for p in proof]
    bad[i][bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(ConsistencyError, match="root mismatch"):
        verify_consistency(old, size, TREE130.root(old), TREE130.root(size), [bytes(p) for p in bad])


def test_module_uses_only_the_standard_library():
    tree = ast.parse(Path(merkle.__file__).read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "hashlib", "collections"}, imported
