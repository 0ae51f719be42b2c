"""A tamper-evident audit log: a hash chain with signed checkpoints, one per service that holds personal data
or evidence (report-intake, verification, dispatch-bridge).

Every entry carries the SHA-256 of the one before it (`prev_hash`) and its own (`entry_hash`, over its sequence
number, time, service, actor, action, target, report and detail, and `prev_hash`), so changing, removing or
moving an entry breaks the chain at that entry. Someone who can write the database could still rewrite the
chain from some entry on and recompute every hash after it; the signed checkpoints stop that: at intervals the
chain's head (sequence number and hash) is signed with the service's own Ed25519 key (the one it signs its
service credentials with, by key id) and also written to the service's log, which lives outside the database.
A rewritten chain no longer matches the checkpoints signed before it, and a chain cut short ends before one.

Entries are written in the transaction of the change they record (no change without its entry, and no entry
without its change), just before it commits: the head is read and the entries appended under a lock held only
for the commit itself (PostgreSQL: an advisory lock; SQLite's write transactions are serial already).

What an entry holds is chosen to be kept: ids, hashes, who and what, never a citizen's words, contact details
or place. So retention never needs to delete an entry, and the chain stays verifiable across deletions (a
deletion is itself an entry).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, Text, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.db import Database, before_commit, serialise
from burgermelding_shared.service_auth import ServiceKey
from burgermelding_shared.timeutil import utcnow

log = logging.getLogger(__name__)

GENESIS = "0" * 64  # the prev_hash of the first entry
PENDING = "audit-chain-pending"  # session.info: entries to append just before the commit
CHECKPOINT_CONTEXT = "burgermelding-audit-checkpoint:v1"


@dataclass(frozen=True)
class AuditTables:
    service: str
    entries: Table
    checkpoints: Table


def audit_tables(metadata: MetaData, service: str) -> AuditTables:
    """Add the audit chain and its checkpoints to a service's metadata."""
    entries = Table(
        "audit_chain",
        metadata,
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        # As text, exactly as hashed: a datetime's round trip through a database must not change a hash.
        Column("at", String(32), nullable=False),
        Column("service", String(32), nullable=False),
        Column("actor", String(64), nullable=False),  # a dispatcher's name, a service, "citizen", "retention"
        Column("role", String(16), nullable=False),  # dispatcher | supervisor | service | citizen | system ...
        Column("action", String(48), nullable=False),
        Column("target_type", String(16), nullable=False),
        Column("target_id", String(80), nullable=False),
        Column("report_id", String(36)),  # the report it concerns, for its custody record
        Column("detail", Text),  # canonical JSON, as hashed
        Column("prev_hash", String(64), nullable=False),
        Column("entry_hash", String(64), nullable=False),
        Index("ix_audit_chain_report", "report_id", "seq"),
        Index("ix_audit_chain_target", "target_type", "target_id"),
    )
    checkpoints = Table(
        "audit_checkpoints",
        metadata,
        Column("seq", BigInteger, primary_key=True, autoincrement=False),  # the head it signs
        Column("entry_hash", String(64), nullable=False),
        Column("signed_at", String(32), nullable=False),
        Column("key_id", String(128), nullable=False),
        Column("signature", String(128), nullable=False),  # base64url Ed25519 over `checkpoint_message`
    )
    return AuditTables(service, entries, checkpoints)


def timestamp(moment: datetime | None = None) -> str:
    return (moment or utcnow()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(value: Any) -> str | None:
    return (
        None
        if value is None
        else json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    )


def entry_hash(entry: dict[str, Any]) -> str:
    """The hash of an entry as stored (its `detail` as the stored text), chained to its `prev_hash`."""
    fields = [
        entry["seq"],
        entry["at"],
        entry["service"],
        entry["actor"],
        entry["role"],
        entry["action"],
        entry["target_type"],
        entry["target_id"],
        entry["report_id"],
        entry["detail"],
        entry["prev_hash"],
    ]
    return hashlib.sha256(json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def record(
    session: AsyncSession,
    tables: AuditTables,
    *,
    actor: str,
    role: str,
    action: str,
    target_type: str,
    target_id: str,
    report_id: str | None = None,
    detail: Any = None,
) -> None:
    """Add an entry to the chain, in the caller's transaction (from `Database.transaction()`); it is appended
    just before the commit, so the chain's order is the order of the commits."""
    pending = session.info.setdefault(PENDING, [])
    pending.append(
        {
            "at": timestamp(),
            "service": tables.service,
            "actor": actor[:64],
            "role": role[:16],
            "action": action[:48],
            "target_type": target_type[:16],
            "target_id": target_id[:80],
            "report_id": report_id[:36] if report_id else None,
            "detail": canonical(detail),
        }
    )

    async def append(session: AsyncSession) -> None:
        await append_pending(session, tables)

    before_commit(session, f"audit-chain:{tables.entries.name}", append)


async def append_pending(session: AsyncSession, tables: AuditTables) -> None:
    entries = session.info.pop(PENDING, [])
    if not entries:
        return
    await serialise(session, f"audit-chain:{tables.service}")
    head = (
        await session.execute(
            select(tables.entries.c.seq, tables.entries.c.entry_hash).order_by(tables.entries.c.seq.desc()).limit(1)
        )
    ).first()
    seq, prev = (head.seq, head.entry_hash) if head is not None else (0, GENESIS)
    rows = []
    for entry in entries:
        seq += 1
        row = {**entry, "seq": seq, "prev_hash": prev}
        row["entry_hash"] = prev = entry_hash(row)
        rows.append(row)
    await session.execute(insert(tables.entries), rows)


def checkpoint_message(service: str, seq: int, head_hash: str, signed_at: str) -> bytes:
    return f"{CHECKPOINT_CONTEXT}:{service}:{seq}:{head_hash}:{signed_at}".encode()


async def write_checkpoint(db: Database, tables: AuditTables, key: ServiceKey) -> dict[str, Any] | None:
    """Sign the chain's head if it moved since the last checkpoint; the checkpoint is also logged, so that a
    copy lives outside the database. Returns it, or None when there was nothing new to sign."""
    async with db.transaction() as session:
        await serialise(session, f"audit-chain:{tables.service}")
        head = (
            await session.execute(
                select(tables.entries.c.seq, tables.entries.c.entry_hash).order_by(tables.entries.c.seq.desc()).limit(1)
            )
        ).first()
        last = (await session.execute(select(func.max(tables.checkpoints.c.seq)))).scalar()
        if head is None or (last is not None and last >= head.seq):
            return None
        signed_at = timestamp()
        signature = key.private_key.sign(checkpoint_message(tables.service, head.seq, head.entry_hash, signed_at))
        row = {
            "seq": head.seq,
            "entry_hash": head.entry_hash,
            "signed_at": signed_at,
            "key_id": key.kid,
            "signature": base64.urlsafe_b64encode(signature).rstrip(b"=").decode(),
        }
        await session.execute(insert(tables.checkpoints), [row])
    log.info("audit checkpoint", extra={"audit_checkpoint": {"service": tables.service, **row}})
    return row


class CheckpointWriter(BackgroundLoop):
    """Signs the chain's head every `interval` seconds (a background loop of the service)."""

    name = "audit-checkpoints"

    def __init__(self, db: Database, tables: AuditTables, key: ServiceKey, interval: float) -> None:
        super().__init__()
        self._db, self._tables, self._key = db, tables, key
        self.poll_seconds = interval

    async def run_once(self) -> int:
        await write_checkpoint(self._db, self._tables, self._key)
        return 0  # then sleep the interval


@dataclass(frozen=True)
class Problem:
    seq: int  # the first entry concerned
    kind: str  # changed | missing | out_of_order | checkpoint_mismatch | truncated | bad_signature | unknown_key
    text: str


@dataclass
class ChainReport:
    service: str
    entries: int = 0
    checkpoints: int = 0
    head: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.intact:
            return (
                f"audit chain of {self.service}: intact ({self.entries} entries, {self.checkpoints} signed "
                f"checkpoints, head {self.head})"
            )
        first = min(self.problems, key=lambda p: p.seq)
        lines = [
            f"audit chain of {self.service}: BROKEN at entry {first.seq}: {first.text}",
            f"({self.entries} entries, {self.checkpoints} checkpoints; every problem found:)",
        ]
        lines += [f"  entry {p.seq}: [{p.kind}] {p.text}" for p in sorted(self.problems, key=lambda p: p.seq)]
        return "\n".join(lines)


def public_key_of(jwk: dict[str, str]) -> tuple[str, Ed25519PublicKey]:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "x" not in jwk or "kid" not in jwk:
        raise ValueError("a checkpoint key is an Ed25519 public JWK with a kid")
    raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
    return jwk["kid"], Ed25519PublicKey.from_public_bytes(raw)


async def _entries(db: Database, tables: AuditTables, batch: int = 2000) -> AsyncIterator[dict[str, Any]]:
    after = -1
    while True:
        async with db.sessions() as session:
            rows = (
                (
                    await session.execute(
                        select(tables.entries)
                        .where(tables.entries.c.seq > after)
                        .order_by(tables.entries.c.seq)
                        .limit(batch)
                    )
                )
                .mappings()
                .all()
            )
        if not rows:
            return
        for row in rows:
            yield dict(row)
        after = rows[-1]["seq"]


async def verify_chain(db: Database, tables: AuditTables, keys: dict[str, Ed25519PublicKey]) -> ChainReport:
    """Walk the chain in order and check every link and every checkpoint; report what does not hold."""
    report = ChainReport(tables.service)
    hashes: dict[int, str] = {}  # seq -> stored hash, for the checkpoints (8 bytes and a str each)
    expected, prev = 1, GENESIS
    async for entry in _entries(db, tables):
        seq = entry["seq"]
        report.entries += 1
        if seq != expected:
            report.problems.append(
                Problem(
                    expected,
                    "missing",
                    f"entries {expected}..{seq - 1} are missing"
                    if seq - 1 > expected
                    else f"entry {expected} is missing",
                )
            )
        elif entry["prev_hash"] != prev:
            report.problems.append(
                Problem(
                    seq,
                    "out_of_order",
                    "does not follow the entry before it (an entry was moved, replaced or inserted here)",
                )
            )
        if entry_hash(entry) != entry["entry_hash"]:
            report.problems.append(Problem(seq, "changed", "its content no longer matches its hash (edited)"))
        hashes[seq] = entry["entry_hash"]
        expected, prev = seq + 1, entry["entry_hash"]
    report.head = expected - 1
    async with db.sessions() as session:
        checkpoints = (
            (await session.execute(select(tables.checkpoints).order_by(tables.checkpoints.c.seq))).mappings().all()
        )
    report.checkpoints = len(checkpoints)
    for point in checkpoints:
        seq = point["seq"]
        key = keys.get(point["key_id"])
        if key is None:
            report.problems.append(
                Problem(
                    seq,
                    "unknown_key",
                    f"the checkpoint at {seq} is signed with key "
                    f"'{point['key_id']}', which was not given to check it with",
                )
            )
            continue
        try:
            signature = base64.urlsafe_b64decode(point["signature"] + "=" * (-len(point["signature"]) % 4))
            key.verify(signature, checkpoint_message(tables.service, seq, point["entry_hash"], point["signed_at"]))
        except (InvalidSignature, ValueError):
            report.problems.append(
                Problem(
                    seq,
                    "bad_signature",
                    f"the checkpoint at {seq} is not signed by key '{point['key_id']}' (forged or altered)",
                )
            )
            continue
        if seq > report.head:
            report.problems.append(
                Problem(
                    report.head + 1,
                    "truncated",
                    f"the chain ends at {report.head}, but "
                    f"entry {seq} was signed: entries {report.head + 1}..{seq} are gone",
                )
            )
        elif seq in hashes and hashes[seq] != point["entry_hash"]:
            report.problems.append(
                Problem(
                    seq,
                    "checkpoint_mismatch",
                    f"entry {seq} differs from the one signed at {point['signed_at']}: entries up to it were rewritten",
                )
            )
    return report


async def entries_about(
    session: AsyncSession,
    tables: AuditTables,
    *,
    report_id: str | None = None,
    target_ids: Iterable[str] = (),
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Entries concerning one report (or targets), oldest first, with their hashes: for a custody record."""
    query = select(tables.entries).order_by(tables.entries.c.seq).limit(limit)
    targets = list(target_ids)
    if report_id is not None and targets:
        query = query.where((tables.entries.c.report_id == report_id) | tables.entries.c.target_id.in_(targets))
    elif report_id is not None:
        query = query.where(tables.entries.c.report_id == report_id)
    elif targets:
        query = query.where(tables.entries.c.target_id.in_(targets))
    return [as_json(dict(row)) for row in (await session.execute(query)).mappings().all()]


def as_json(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry as shown: `detail` parsed, and the stored text kept beside it (`detail_json`) for checking."""
    return {
        **entry,
        "detail": json.loads(entry["detail"]) if entry["detail"] is not None else None,
        "detail_json": entry["detail"],
    }


def check_entry(entry: dict[str, Any]) -> bool:
    """Whether an entry as shown (`as_json`) still hashes to its `entry_hash` (for an exported copy)."""
    stored = {**entry, "detail": entry.get("detail_json")}
    return entry_hash(stored) == entry["entry_hash"]
