"""RFC 9162 (Certificate Transparency v2) Merkle tree hashes, inclusion and consistency proofs.

The tree is the one of RFC 9162 section 2.1 with SHA-256: a leaf is ``SHA-256(0x00 || data)``, an
interior node ``SHA-256(0x01 || left || right)``, the empty tree ``SHA-256()``, and a tree of n > 1
leaves is split after the largest power of two smaller than n. Everything here works on *leaf
hashes* (what a log stores), so a caller hashes its entries once with :func:`leaf_hash`.

Two implementations of the same definitions live here:

- the reference list functions :func:`root_from_leaf_hashes`, :func:`inclusion_proof` and
  :func:`consistency_proof`, which follow the recursive definitions MTH, PATH and PROOF/SUBPROOF of
  sections 2.1.1, 2.1.3.1 and 2.1.4.1 word for word and cost O(n) hashes;
- :class:`MerkleTree`, an append-only tree that keeps every perfect subtree's hash level by level,
  so that an append costs amortised O(1) hashes and a root or proof for any size up to the current
  one costs O(log n) hashes plus lookups.

The verifiers :func:`verify_inclusion` and :func:`verify_consistency` run the algorithms of
sections 2.1.3.2 and 2.1.4.2 and raise :class:`InclusionError` or :class:`ConsistencyError` naming
what is wrong. Every hash they are given (leaf hash, roots, proof elements) must be 32 bytes.

Consistency with the empty tree, which RFC 9162 leaves out (PROOF(m, D_n) and its verification are
defined for 0 < m < n only): the empty tree is a prefix of every tree, so its consistency proof is
the empty list; verifying one requires an empty proof and an old root equal to :data:`EMPTY_ROOT`,
and puts no condition on the new root beyond its length (two trees of size 0 must both have root
:data:`EMPTY_ROOT`). This module uses only the standard library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256 of the empty string (RFC 9162 section 2.1.1)."""


class MerkleError(ValueError):
    """A Merkle tree argument or proof that is not valid, with the reason."""


class InclusionError(MerkleError):
    """An inclusion proof (RFC 9162 section 2.1.3) that cannot be made or does not verify."""


class ConsistencyError(MerkleError):
    """A consistency proof (RFC 9162 section 2.1.4) that cannot be made or does not verify."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf, MTH({d(0)}) = HASH(0x00 || d(0)) (RFC 9162 section 2.1.1)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node, HASH(0x01 || left || right) (RFC 9162 section 2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """k, the largest power of two smaller than n (n >= 2), where RFC 9162 section 2.1.1 splits."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(what: str, value: bytes, error: type[MerkleError]) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        size = len(value) if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise error(f"{what} must be {HASH_SIZE} bytes, got {size}")


def _check_count(what: str, value: int, error: type[MerkleError]) -> None:
    if not isinstance(value, int) or value < 0:
        raise error(f"{what} must be a non-negative integer, got {value!r}")


# Reference list functions: the recursive definitions of RFC 9162 section 2.1, O(n) hashes each.


def _mth(hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) for start < end over leaf hashes (RFC 9162 section 2.1.1)."""
    if end - start == 1:
        return hashes[start]
    k = _split(end - start)
    return node_hash(_mth(hashes, start, start + k), _mth(hashes, start + k, end))


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash MTH(D_n) of the leaves whose leaf hashes are ``hashes``.

    RFC 9162 section 2.1.1: MTH({}) = HASH(), MTH({d(0)}) is the leaf hash, and for n > 1,
    MTH(D_n) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])) with k the largest power of two < n.
    """
    return _mth(hashes, 0, len(hashes)) if hashes else EMPTY_ROOT


def _path(hashes: Sequence[bytes], m: int, start: int, end: int) -> list[bytes]:
    """PATH(m, D[start:end]) (RFC 9162 section 2.1.3.1), m relative to start."""
    if end - start == 1:
        return []
    k = _split(end - start)
    if m < k:
        return _path(hashes, m, start, start + k) + [_mth(hashes, start + k, end)]
    return _path(hashes, m - k, start + k, end) + [_mth(hashes, start, start + k)]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """The inclusion proof PATH(index, D_size) of leaf ``index`` in the tree of the first ``size``
    leaf hashes (RFC 9162 section 2.1.3.1), ordered from the leaf's sibling up to the root's child.
    """
    _check_count("tree size", size, InclusionError)
    _check_count("leaf index", index, InclusionError)
    if size > len(leaf_hashes):
        raise InclusionError(f"tree size {size} > number of leaf hashes {len(leaf_hashes)}")
    if index >= size:
        raise InclusionError(f"leaf index {index} >= tree size {size}")
    return _path(leaf_hashes, index, 0, size)


def _subproof(hashes: Sequence[bytes], m: int, start: int, end: int, known: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b) (RFC 9162 section 2.1.4.1), m relative to start."""
    n = end - start
    if m == n:
        return [] if known else [_mth(hashes, start, end)]
    k = _split(n)
    if m <= k:
        return _subproof(hashes, m, start, start + k, known) + [_mth(hashes, start + k, end)]
    return _subproof(hashes, m - k, start + k, end, False) + [_mth(hashes, start, start + k)]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """The consistency proof PROOF(old_size, D_new_size) = SUBPROOF(old_size, D_new_size, true)
    between the trees of the first ``old_size`` and ``new_size`` leaf hashes (RFC 9162 2.1.4.1).

    Empty when ``old_size == new_size`` and, by this module's convention, when ``old_size == 0``.
    """
    _check_count("old size", old_size, ConsistencyError)
    _check_count("new size", new_size, ConsistencyError)
    if new_size > len(leaf_hashes):
        raise ConsistencyError(f"new size {new_size} > number of leaf hashes {len(leaf_hashes)}")
    if old_size > new_size:
        raise ConsistencyError(f"old size {old_size} > new size {new_size}")
    if old_size in (0, new_size):
        return []
    return _subproof(leaf_hashes, old_size, 0, new_size, True)


# Verifiers: the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2.


def _inclusion_proof_length(index: int, size: int) -> int:
    """len(PATH(index, D_size)) for index < size: one node per level below the point where the
    paths to leaves ``index`` and ``size - 1`` meet, plus one per left sibling above it."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _consistency_proof_length(old_size: int, new_size: int) -> int:
    """len(PROOF(old_size, D_new_size)) for 0 < old_size < new_size: the inclusion path of leaf
    old_size - 1 above the largest perfect subtree that ends the old tree, plus that subtree's
    hash unless it is the whole old tree (old_size a power of two)."""
    inner = ((old_size - 1) ^ (new_size - 1)).bit_length()
    border = ((old_size - 1) >> inner).bit_count()
    shift = (old_size & -old_size).bit_length() - 1
    return inner - shift + border + (0 if old_size == 1 << shift else 1)


def _root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Steps 2-5 of RFC 9162 section 2.1.3.2: the root that ``proof`` gives for ``leaf``."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise InclusionError(f"proof too long for leaf {index} in a tree of size {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise InclusionError(f"proof too short for leaf {index} in a tree of size {size}")
    return r


def root_with_tail(start: int, frontier: Sequence[bytes], tail: Sequence[bytes]) -> bytes:
    """MTH of the tree whose first ``start`` leaves are summarised by ``frontier`` (the roots of its
    perfect subtrees, largest first, one per binary digit of ``start``: :meth:`MerkleTree.frontier`)
    and whose other leaves have the hashes ``tail``. Equal to a signed root, it proves every leaf of
    ``tail`` at its place (start, start + 1, ...) with O(len(tail)) hashes, whoever gave ``frontier``."""
    _check_count("start", start, MerkleError)
    sizes = [1 << k for k in range(start.bit_length() - 1, -1, -1) if start >> k & 1]
    if len(frontier) != len(sizes):
        raise MerkleError(f"a frontier of a tree of {start} leaves has {len(sizes)} hashes, got {len(frontier)}")
    if not tail and not sizes:
        return EMPTY_ROOT
    stack = []
    for size, h in zip(sizes, frontier):
        _check_hash("frontier hash", h, MerkleError)
        stack.append((size, h))
    for leaf in tail:
        _check_hash("leaf hash", leaf, MerkleError)
        size, h = 1, leaf
        while stack and stack[-1][0] == size:  # a binary counter: equal perfect subtrees merge
            size, h = 2 * size, node_hash(stack.pop()[1], h)
        stack.append((size, h))
    return _fold_right([h for _, h in stack])


def _fold_right(parts: Sequence[bytes]) -> bytes:
    """node_hash(p0, node_hash(p1, ... node_hash(p_k-1, p_k))): the root over perfect subtrees,
    largest first (RFC 9162's MTH, whose left subtree is always the largest power of two)."""
    h = parts[-1]
    for left in reversed(parts[:-1]):
        h = node_hash(left, h)
    return h


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``proof`` proves leaf hash ``leaf_hash`` at ``index`` in the tree of ``size``
    leaves with root ``root`` (RFC 9162 section 2.1.3.2); raise :class:`InclusionError` if not.
    """
    _check_count("tree size", size, InclusionError)
    _check_count("leaf index", index, InclusionError)
    if index >= size:
        raise InclusionError(f"leaf index {index} >= tree size {size}")
    _check_hash("leaf hash", leaf_hash, InclusionError)
    _check_hash("root", root, InclusionError)
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p, InclusionError)
    want = _inclusion_proof_length(index, size)
    if len(proof) != want:
        raise InclusionError(
            f"wrong proof length {len(proof)} for leaf {index} in a tree of size {size}, expected {want}"
        )
    got = _root_from_inclusion(leaf_hash, index, size, proof)
    if got != root:
        raise InclusionError(f"root mismatch: the proof gives {got.hex()}, expected {root.hex()}")


def _roots_from_consistency(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """Steps 2-6 of RFC 9162 section 2.1.4.2 for 0 < old_size < new_size: (fr, sr)."""
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ConsistencyError(f"proof too long for sizes {old_size} -> {new_size}")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ConsistencyError(f"proof too short for sizes {old_size} -> {new_size}")
    return fr, sr


def _verify_trivial_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """The cases outside RFC 9162 section 2.1.4.2: old_size == new_size, or old_size == 0."""
    if proof:
        raise ConsistencyError(
            f"wrong proof length {len(proof)} for sizes {old_size} -> {new_size}, expected 0"
        )
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise ConsistencyError(f"old root mismatch: a tree of size 0 has root {EMPTY_ROOT.hex()}")
    if old_size == new_size and old_root != new_root:
        raise ConsistencyError(f"root mismatch: equal sizes {old_size} but different roots")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that ``proof`` proves the tree of ``old_size`` leaves with root ``old_root`` is a
    prefix of the tree of ``new_size`` leaves with root ``new_root`` (RFC 9162 section 2.1.4.2);
    raise :class:`ConsistencyError` if not. Equal sizes need an empty proof and equal roots;
    ``old_size == 0`` needs an empty proof and ``old_root == EMPTY_ROOT`` (see the module doc).
    """
    _check_count("old size", old_size, ConsistencyError)
    _check_count("new size", new_size, ConsistencyError)
    if old_size > new_size:
        raise ConsistencyError(f"old size {old_size} > new size {new_size}")
    _check_hash("old root", old_root, ConsistencyError)
    _check_hash("new root", new_root, ConsistencyError)
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p, ConsistencyError)
    if old_size in (0, new_size):
        return _verify_trivial_consistency(old_size, new_size, old_root, new_root, proof)
    want = _consistency_proof_length(old_size, new_size)
    if len(proof) != want:
        raise ConsistencyError(
            f"wrong proof length {len(proof)} for sizes {old_size} -> {new_size}, expected {want}"
        )
    fr, sr = _roots_from_consistency(old_size, new_size, old_root, proof)
    if fr != old_root:
        raise ConsistencyError(f"old root mismatch: the proof gives {fr.hex()}, expected {old_root.hex()}")
    if sr != new_root:
        raise ConsistencyError(f"new root mismatch: the proof gives {sr.hex()}, expected {new_root.hex()}")


class MerkleTree:
    """An append-only RFC 9162 Merkle tree over leaf hashes.

    ``_levels[h][i]`` is the hash of the perfect subtree of 2**h leaves starting at leaf i * 2**h;
    only complete subtrees are stored. Every node of the RFC 9162 tree of any size n <= len(self)
    is either such a subtree or lies on that tree's right border and is folded from O(log n) of
    them, so :meth:`root`, :meth:`inclusion_proof` and :meth:`consistency_proof` cost O(log n)
    hashes; :meth:`append` costs amortised O(1) (one hash per subtree it completes).
    """

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = [[]]

    @classmethod
    def from_leaf_hashes(cls, hashes: Iterable[bytes]) -> MerkleTree:
        """A tree holding ``hashes`` as its leaves, in order."""
        tree = cls()
        for h in hashes:
            tree.append(h)
        return tree

    def __len__(self) -> int:
        return len(self._levels[0])

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0])

    def leaf_hash_at(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        if not 0 <= index < self.size:
            raise MerkleError(f"leaf index {index} >= tree size {self.size}")
        return self._levels[0][index]

    def append(self, leaf_hash: bytes) -> int:
        """Add a leaf hash at the end; returns its index. Stores each subtree it completes."""
        _check_hash("leaf hash", leaf_hash, MerkleError)
        index, level, h = self.size, 0, leaf_hash
        self._levels[0].append(h)
        while len(self._levels[level]) % 2 == 0:
            row = self._levels[level]
            h, level = node_hash(row[-2], row[-1]), level + 1
            if level == len(self._levels):
                self._levels.append([])
            self._levels[level].append(h)
        return index

    def _size_arg(self, size: int | None, what: str, error: type[MerkleError]) -> int:
        if size is None:
            return self.size
        _check_count(what, size, error)
        if size > self.size:
            raise error(f"{what} {size} > current tree size {self.size}")
        return size

    def _subtrees(self, start: int, end: int) -> list[bytes]:
        """The perfect subtrees that make up D[start:end], largest first (start a multiple of the
        smallest power of two >= end - start)."""
        parts = []
        while start < end:
            level = (end - start).bit_length() - 1
            parts.append(self._levels[level][start >> level])
            start += 1 << level
        return parts

    def _range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range of the RFC 9162 tree (start a multiple of the smallest
        power of two >= end - start > 0): fold its perfect subtrees, largest first, from the right.
        """
        return _fold_right(self._subtrees(start, end))

    def frontier(self, size: int) -> list[bytes]:
        """The roots of the perfect subtrees of the tree of the first ``size`` leaves, largest first
        (what :func:`root_with_tail` extends)."""
        return self._subtrees(0, self._size_arg(size, "tree size", MerkleError))

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all) (RFC 9162 section 2.1.1)."""
        size = self._size_arg(size, "tree size", MerkleError)
        return self._range_hash(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D_size) (RFC 9162 section 2.1.3.1) for the tree of the first ``size``
        leaves (default: all), walked from the root down and returned leaf-first."""
        size = self._size_arg(size, "tree size", InclusionError)
        _check_count("leaf index", index, InclusionError)
        if index >= size:
            raise InclusionError(f"leaf index {index} >= tree size {size}")
        proof, start, end = [], 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                proof.append(self._range_hash(start + k, end))
                end = start + k
            else:
                proof.append(self._range_hash(start, start + k))
                start += k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D_new_size) (RFC 9162 section 2.1.4.1), new_size defaulting to all
        leaves; empty when the sizes are equal or ``old_size == 0``."""
        new_size = self._size_arg(new_size, "new size", ConsistencyError)
        _check_count("old size", old_size, ConsistencyError)
        if old_size > new_size:
            raise ConsistencyError(f"old size {old_size} > new size {new_size}")
        if old_size in (0, new_size):
            return []
        proof, start, end, m, known = [], 0, new_size, old_size, True
        while m != end - start:
            k = _split(end - start)
            if m <= k:
                proof.append(self._range_hash(start + k, end))
                end = start + k
            else:
                proof.append(self._range_hash(start, start + k))
                start, m, known = start + k, m - k, False
        if not known:
            proof.append(self._range_hash(start, end))
        proof.reverse()
        return proof
