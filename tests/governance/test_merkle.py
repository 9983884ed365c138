"""governance/merkle.py against the RFC 6962 reference vectors, a naive implementation, and random trees.

The reference leaves, roots and proofs are Certificate Transparency's published test
vectors (merkle_tree_test); a tree no other implementation agrees with proves nothing
to a third party holding an exported checkpoint.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance import merkle

CT_ENTRIES = [
    bytes.fromhex(h)
    for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
CT_CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


def naive_root(entries: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 written out literally, with slices: the definition the fast code must match."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1
    while k * 2 < len(entries):
        k *= 2
    return hashlib.sha256(b"\x01" + naive_root(entries[:k]) + naive_root(entries[k:])).digest()


def entries_of(n: int) -> list[bytes]:
    return [hashlib.sha256(b"event %d" % i).digest() for i in range(n)]


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_every_tree_head_of_the_reference_leaves_is_the_published_one(size):
    assert merkle.tree_root(CT_ENTRIES, size).hex() == CT_ROOTS[size]


def test_the_empty_tree_hash_is_sha256_of_nothing():
    assert merkle.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
def test_inclusion_proofs_are_the_published_ones_and_verify(index, size, expected):
    proof = merkle.inclusion_proof(CT_ENTRIES, index, size)

    assert [p.hex() for p in proof] == expected
    root = bytes.fromhex(CT_ROOTS[size])
    assert merkle.verify_inclusion(entry=CT_ENTRIES[index], index=index, tree_size=size, proof=proof, root=root)


@pytest.mark.parametrize(("first", "second", "expected"), CT_CONSISTENCY)
def test_consistency_proofs_are_the_published_ones_and_verify(first, second, expected):
    proof = merkle.consistency_proof(CT_ENTRIES, first, second)

    assert [p.hex() for p in proof] == expected
    assert merkle.verify_consistency(
        first_size=first,
        second_size=second,
        first_root=bytes.fromhex(CT_ROOTS[first]),
        second_root=bytes.fromhex(CT_ROOTS[second]),
        proof=proof,
    )


@pytest.mark.parametrize("size", range(0, 70))
def test_the_tree_head_matches_the_literal_definition_and_the_streaming_builder(size):
    entries = entries_of(size)
    builder = merkle.TreeBuilder()
    for entry in entries:
        builder.append(entry)

    assert merkle.tree_root(entries) == naive_root(entries) == builder.root()


def test_every_proof_in_every_small_tree_verifies_and_a_wrong_one_does_not():
    entries = entries_of(33)
    for n in range(1, 34):
        root = merkle.tree_root(entries, n)
        for m in range(n):
            proof = merkle.inclusion_proof(entries, m, n)
            assert merkle.verify_inclusion(entry=entries[m], index=m, tree_size=n, proof=proof, root=root)
            assert not merkle.verify_inclusion(entry=entries[m] + b"x", index=m, tree_size=n, proof=proof, root=root)
            if n > 1:
                assert not merkle.verify_inclusion(
                    entry=entries[m], index=(m + 1) % n, tree_size=n, proof=proof, root=root
                )
        for m in range(0, n + 1):
            proof = merkle.consistency_proof(entries, m, n)
            first_root = merkle.tree_root(entries, m)
            assert merkle.verify_consistency(
                first_size=m, second_size=n, first_root=first_root, second_root=root, proof=proof
            )
            if 0 < m < n:
                forged = merkle.tree_root(entries[: m - 1] + [b"forged"], m)
                assert not merkle.verify_consistency(
                    first_size=m, second_size=n, first_root=forged, second_root=root, proof=proof
                )


@settings(max_examples=150, deadline=None)
@given(data=st.data(), size=st.integers(min_value=1, max_value=300))
def test_random_inclusion_and_consistency_proofs_verify_and_tampered_ones_do_not(data, size):
    entries = entries_of(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    first = data.draw(st.integers(min_value=0, max_value=size))
    root = merkle.tree_root(entries)
    assert root == naive_root(entries)

    path = merkle.inclusion_proof(entries, index, size)
    assert merkle.verify_inclusion(entry=entries[index], index=index, tree_size=size, proof=path, root=root)
    consistency = merkle.consistency_proof(entries, first, size)
    first_root = merkle.tree_root(entries, first)
    assert merkle.verify_consistency(
        first_size=first, second_size=size, first_root=first_root, second_root=root, proof=consistency
    )

    if path:
        flip = data.draw(st.integers(min_value=0, max_value=len(path) - 1))
        bad = [*path[:flip], bytes(32), *path[flip + 1 :]]
        assert not merkle.verify_inclusion(entry=entries[index], index=index, tree_size=size, proof=bad, root=root)
    if consistency:
        flip = data.draw(st.integers(min_value=0, max_value=len(consistency) - 1))
        bad = [*consistency[:flip], bytes(32), *consistency[flip + 1 :]]
        assert not merkle.verify_consistency(
            first_size=first, second_size=size, first_root=first_root, second_root=root, proof=bad
        )


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=5))
def test_the_streaming_builder_gives_every_prefix_root(sizes):
    entries = entries_of(max(sizes))
    builder = merkle.TreeBuilder()
    roots = {0: builder.root()}
    for entry in entries:
        builder.append(entry)
        roots[builder.size] = builder.root()

    for size in sizes:
        assert roots[size] == merkle.tree_root(entries, size)


def test_a_proof_for_a_leaf_outside_the_tree_is_refused_with_the_bad_argument_named():
    with pytest.raises(ValueError, match="index=5 is out of range"):
        merkle.inclusion_proof(entries_of(5), 5, 5)
    with pytest.raises(ValueError, match="first_size=6 is out of range"):
        merkle.consistency_proof(entries_of(5), 6, 5)
    with pytest.raises(ValueError, match="tree_size=9 is out of range"):
        merkle.tree_root(entries_of(5), 9)
