"""Merkle tree hashing over the audit trail, as RFC 6962 / RFC 9162 (Certificate Transparency) define it.

Pure Python, no Django: the entries are the audit events' hashes (32 raw bytes each),
in seq order. A leaf is SHA-256(0x00 || entry), an interior node SHA-256(0x01 || left ||
right), and a tree of n > 1 leaves splits at k, the largest power of two smaller than n
(RFC 9162 §2.1.1). The 0x00 / 0x01 prefixes keep a leaf from passing for a node.

A signed tree head over the first n events commits to every one of them: an inclusion
proof shows one event is in it, a consistency proof shows a tree of m events is a prefix
of a tree of n, each in O(log n) hashes (§2.1.3, §2.1.4), so an auditor can check one
event or one older checkpoint against a later one without reading the whole table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_ALGORITHM = "sha256"
TREE_ALGORITHM = "rfc9162-sha256"  # the name an exported checkpoint carries
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = SHA-256 of the empty string


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_size(name: str, value: int, *, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name}={value!r} is out of range: it must be a whole number from {low} to {high}.")


def _subtree_root(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH of the leaf hashes leaves[start:end] (end > start), without copying slices."""
    n = end - start
    if n == 1:
        return leaves[start]
    k = _split(n)
    return node_hash(_subtree_root(leaves, start, start + k), _subtree_root(leaves, start + k, end))


def leaf_hashes(entries: Sequence[bytes]) -> list[bytes]:
    return [leaf_hash(entry) for entry in entries]


def tree_root(entries: Sequence[bytes], tree_size: int | None = None) -> bytes:
    """The tree head (MTH) of the first `tree_size` entries (all of them by default)."""
    n = len(entries) if tree_size is None else tree_size
    _check_size("tree_size", n, low=0, high=len(entries))
    if n == 0:
        return EMPTY_ROOT
    return _subtree_root(leaf_hashes(entries[:n]), 0, n)


def inclusion_proof(entries: Sequence[bytes], index: int, tree_size: int) -> list[bytes]:
    """The audit path (RFC 9162 §2.1.3.1) of entry `index` (from 0) in the tree of the first `tree_size` entries."""
    _check_size("tree_size", tree_size, low=1, high=len(entries))
    _check_size("index", index, low=0, high=tree_size - 1)
    leaves = leaf_hashes(entries[:tree_size])
    path: list[bytes] = []
    start, end, m = 0, tree_size, index
    # Walk down from the root; each level's sibling subtree goes on the path (collected top-down, then reversed).
    while end - start > 1:
        k = _split(end - start)
        if m < k:
            path.append(_subtree_root(leaves, start + k, end))
            end = start + k
        else:
            path.append(_subtree_root(leaves, start, start + k))
            start, m = start + k, m - k
    path.reverse()
    return path


def consistency_proof(entries: Sequence[bytes], first_size: int, second_size: int) -> list[bytes]:
    """The proof (RFC 9162 §2.1.4.1) that the tree of `first_size` entries is a prefix of the one of `second_size`."""
    _check_size("second_size", second_size, low=0, high=len(entries))
    _check_size("first_size", first_size, low=0, high=second_size)
    if first_size == 0 or first_size == second_size:
        return []
    leaves = leaf_hashes(entries[:second_size])
    proof: list[bytes] = []
    start, end, m, whole = 0, second_size, first_size, True  # SUBPROOF(m, D[start:end], whole)
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(_subtree_root(leaves, start + k, end))
            end = start + k
        else:
            proof.append(_subtree_root(leaves, start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        proof.append(_subtree_root(leaves, start, end))
    proof.reverse()
    return proof


def verify_inclusion(*, entry: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does `proof` show `entry` at `index` in the tree of `tree_size` with head `root`?"""
    if index < 0 or index >= tree_size:
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash(entry)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    *, first_size: int, second_size: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: does `proof` show (first_size, first_root) is a prefix of (second_size, second_root)?"""
    if first_size < 0 or first_size > second_size:
        return False
    if first_size == second_size:
        return not proof and first_root == second_root
    if first_size == 0:
        return not proof  # every tree extends the empty one
    path = list(proof)
    if not path:
        return False
    if first_size & (first_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, first_root)
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


class TreeBuilder:
    """The tree head of a stream of entries, at any size, in O(log n) memory.

    Keeps the roots of the perfect subtrees the entries so far decompose into (one per
    set bit of the size, largest first, as the split rule lays them out); the head folds
    them from the right. Used to recompute every checkpoint's root in one pass over the
    events, however many checkpoints there are.
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (leaf count, subtree root)

    def append(self, entry: bytes) -> None:
        # leaf_hash and node_hash written out: verify_audit appends every event of the trail here.
        sha256, stack = hashlib.sha256, self._stack
        count, node = 1, sha256(b"\x00" + entry).digest()
        while stack and stack[-1][0] == count:
            left_count, left = stack.pop()
            count, node = count + left_count, sha256(b"\x01" + left + node).digest()
        stack.append((count, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node
