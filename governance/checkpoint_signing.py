"""What an audit checkpoint says and how it is signed (Ed25519), exported and checked.

The signed statement is canonical JSON (sorted keys, no whitespace, UTF-8, as the
chain's events are) of the tree size, the Merkle root, the last event's seq and hash,
the time and the key's fingerprint, plus the names of the algorithms, so a third
party can check an exported checkpoint with any Ed25519 and SHA-256 library and the
RFC 9162 definition, without Loupe.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from governance.audit_chain import canonical_json
from governance.merkle import TREE_ALGORITHM

STATEMENT_TYPE = "loupe.audit-checkpoint/v1"
SIGNATURE_ALGORITHM = "ed25519"
DEBUG_KEY_FILE = "audit_signing_key"  # under VAR_DIR, DEBUG only


def checkpoint_statement(
    *, tree_size: int, root_hash: str, last_seq: int, last_event_hash: str, created_at: str, key_fingerprint: str
) -> dict[str, Any]:
    return {
        "type": STATEMENT_TYPE,
        "tree_algorithm": TREE_ALGORITHM,
        "signature_algorithm": SIGNATURE_ALGORITHM,
        "tree_size": tree_size,
        "root_hash": root_hash,
        "last_seq": last_seq,
        "last_event_hash": last_event_hash,
        "created_at": created_at,
        "key_fingerprint": key_fingerprint,
    }


def public_key_b64(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def key_fingerprint(public_key: str) -> str:
    """sha256 of the raw 32-byte public key, hex: what a third party compares with the key it was given."""
    return hashlib.sha256(base64.b64decode(public_key)).hexdigest()


def _private_key_from_b64(value: str, *, where: str) -> Ed25519PrivateKey:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except binascii.Error as exc:
        raise ImproperlyConfigured(f"{where} is not base64 ({exc}).") from exc
    if len(raw) != 32:
        raise ImproperlyConfigured(
            f"{where} must be a raw 32-byte Ed25519 private key; it decodes to {len(raw)} bytes."
        )
    return Ed25519PrivateKey.from_private_bytes(raw)


def new_private_key_b64() -> str:
    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode("ascii")


def signing_key() -> Ed25519PrivateKey:
    """The key from LOUPE_AUDIT_SIGNING_KEY; in DEBUG, one generated once under var/; else an error."""
    if settings.LOUPE_AUDIT_SIGNING_KEY:
        return _private_key_from_b64(settings.LOUPE_AUDIT_SIGNING_KEY, where="LOUPE_AUDIT_SIGNING_KEY")
    if not settings.DEBUG:
        raise ImproperlyConfigured("LOUPE_AUDIT_SIGNING_KEY is not set: audit checkpoints cannot be signed.")
    path = Path(settings.VAR_DIR) / DEBUG_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new_private_key_b64() + "\n")
        path.chmod(0o600)
    return _private_key_from_b64(path.read_text(), where=str(path))


def trusted_public_keys() -> set[str]:
    """The current key's public half and those of earlier keys (LOUPE_AUDIT_TRUSTED_KEYS)."""
    trusted = set(settings.LOUPE_AUDIT_TRUSTED_KEYS)
    try:
        trusted.add(public_key_b64(signing_key()))
    except ImproperlyConfigured:
        pass  # verification still runs; every checkpoint then reads as signed by an unknown key
    return trusted


def statement_sign(statement: dict[str, Any], key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.sign(canonical_json(statement))).decode("ascii")


def signature_valid(statement: dict[str, Any], *, signature: str, public_key: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        key.verify(base64.b64decode(signature, validate=True), canonical_json(statement))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


@dataclass(frozen=True)
class ExportedCheckpoint:
    statement: dict[str, Any]
    signature: str
    public_key: str
    # Optional: the raw 32-byte hashes of events 1..tree_size (the Merkle leaves), so that a verification
    # against this document alone can name the first event that differs (governance/checkpoints.py).
    leaves: bytes | None = None

    @property
    def tree_size(self) -> int:
        return int(self.statement["tree_size"])

    @property
    def root_hash(self) -> str:
        return str(self.statement["root_hash"])

    def document(self) -> dict[str, Any]:
        """The JSON a third party keeps: the statement, its signature and the key, with how to check them."""
        document = {
            "statement": self.statement,
            "signature": self.signature,
            "public_key": self.public_key,
            "how_to_verify": (
                f"{SIGNATURE_ALGORITHM} signature (base64) by public_key (base64, raw 32 bytes) over the statement"
                " as canonical JSON: keys sorted, no whitespace, UTF-8. root_hash is the RFC 9162 Merkle tree head"
                " (SHA-256, leaf = H(0x00 || entry), node = H(0x01 || left || right)) whose entries are the raw"
                " 32-byte hashes of audit events 1..tree_size in seq order."
                + (" leaf_hashes (base64) are those entries, concatenated." if self.leaves is not None else "")
            ),
        }
        if self.leaves is not None:
            document["leaf_hashes"] = base64.b64encode(self.leaves).decode("ascii")
        return document

    def signature_ok(self) -> bool:
        return key_fingerprint(self.public_key) == self.statement.get("key_fingerprint") and signature_valid(
            self.statement, signature=self.signature, public_key=self.public_key
        )


def exported_checkpoint_read(path: Path) -> ExportedCheckpoint:
    """Parse an exported checkpoint file; a malformed one is an error naming the file and what is wrong."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read a checkpoint document ({exc}).") from exc
    try:
        return exported_checkpoint_parse(document)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def exported_checkpoint_parse(document: Any) -> ExportedCheckpoint:
    """An exported checkpoint document (parsed JSON) as the verifier takes it; ValueError says what is wrong.

    Only what the walk needs to read it is checked here: the signature and the root are the verification's.
    """
    if not isinstance(document, dict):
        raise ValueError("a checkpoint document is a JSON object.")
    missing = [k for k in ("statement", "signature", "public_key") if k not in document]
    statement = document.get("statement")
    if missing or not isinstance(statement, dict):
        raise ValueError(f"not a checkpoint document (missing {', '.join(missing) or 'a statement object'}).")
    if statement.get("type") != STATEMENT_TYPE:
        raise ValueError(f"statement type {statement.get('type')!r} is not {STATEMENT_TYPE!r}.")
    size = statement.get("tree_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"statement.tree_size {size!r} is not a whole number of events.")
    leaves = None
    if document.get("leaf_hashes") is not None:
        try:
            leaves = base64.b64decode(str(document["leaf_hashes"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"leaf_hashes is not base64 ({exc}).") from exc
        if len(leaves) != 32 * size:
            raise ValueError(f"leaf_hashes holds {len(leaves)} bytes, not 32 for each of the {size} events.")
    return ExportedCheckpoint(
        statement=statement, signature=str(document["signature"]), public_key=str(document["public_key"]), leaves=leaves
    )
