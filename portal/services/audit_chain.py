"""The audit trail's integrity: a MAC written with each row, a hash chain per
practice sealed after the fact, its verification, and its pruning.

Each row carries `row_mac`, an HMAC of its content computed as it is written
(no extra statement, no lock: a sign-in stays at two statements on
PostgreSQL). A sealer (every few seconds in each `portal serve` process, and
before pruning) then takes each practice's unsealed rows in the order they
happened, under that practice's chain head row (`FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite has one writer at a time), and gives each the next `seq`
and `chain_mac`, an HMAC over the row's content and the previous row's
`chain_mac`. The head (`audit_chain`) keeps the last `seq` and MAC, and where
the chain starts once pruning removed its beginning, under a MAC of its own.

Keys are derived from PORTAL_SECRET_KEY, one per purpose, and never leave the
process: the database cannot forge a row, a link or a head.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from portal import clock
from portal.db import AS_DATETIME, AS_UUID, Reader, Row, Sql, reading
from portal.services.tokens import hmac_sha256
from portal.settings import Settings

NO_PRACTICE = "-"  # the chain of events that concern no practice
GENESIS = "genesis"
SEAL_BATCH = 500
PRUNE_BATCH = 1000
VERIFY_PAGE = 1000
# Rows written before the chain existed carry this row_mac (migration 0013).
LEGACY_ROW_MAC = ""

CONTENT_COLUMNS = (
    "id",
    "practice_id",
    "account_id",
    "role",
    "action",
    "patient_id",
    "occurred_at",
    "client_ip",
    "user_agent",
)
ROW_TYPES = {
    "id": AS_UUID,
    "practice_id": AS_UUID,
    "account_id": AS_UUID,
    "patient_id": AS_UUID,
    "occurred_at": AS_DATETIME,
    "updated_at": AS_DATETIME,
}


@dataclass(frozen=True)
class Keys:
    row: bytes
    chain: bytes
    head: bytes


def derive_keys(secret_key: str) -> Keys:
    """One sub-key per purpose (HMAC of a label under the secret key)."""

    def sub_key(label: str) -> bytes:
        return hmac.digest(secret_key.encode(), f"portal audit trail: {label}".encode(), "sha256")

    return Keys(row=sub_key("row"), chain=sub_key("chain"), head=sub_key("head"))


_keys: Keys | None = None


def configure(settings: Settings) -> None:
    global _keys
    _keys = derive_keys(settings.secret_key)


def keys() -> Keys:
    if _keys is None:
        raise RuntimeError("the audit trail's keys are not configured (audit_chain.configure)")
    return _keys


def _mac(key: bytes, parts: Sequence[object]) -> str:
    return hmac_sha256(key, canonical_json(parts))


_ascii_string = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def canonical_json(parts: Sequence[object]) -> bytes:
    """`json.dumps(list(parts), separators=(",", ":"), ensure_ascii=True)`,
    in bytes: what every MAC covers. Strings, None and integers (all a MAC
    covers) are written by json's own string encoder without making an
    encoder per call; anything else goes through json.dumps."""
    items = []
    for part in parts:
        if part is None:
            items.append("null")
        elif type(part) is str:
            items.append(_ascii_string(part))
        elif type(part) is int:
            items.append(int.__repr__(part))
        else:
            return json.dumps(list(parts), separators=(",", ":"), ensure_ascii=True).encode()
    return f"[{','.join(items)}]".encode()


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
        if moment.year >= 1000:  # four digits: the two spellings agree
            return moment.isoformat(timespec="microseconds")[:-6] + "Z"
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def content(row: Mapping[str, Any]) -> list[str | None]:
    """What a row's MACs cover, in one spelling whichever database read it."""
    return [_text(row[column]) for column in CONTENT_COLUMNS]


def row_mac(row: Mapping[str, Any]) -> str:
    return _mac(keys().row, content(row))


def chain_mac(chain: str, seq: int, previous: str, row: Mapping[str, Any]) -> str:
    return _mac(keys().chain, [chain, seq, previous, *content(row), row["row_mac"]])


def head_mac(chain: str, last_seq: int, last_mac: str, origin_seq: int, origin_mac: str) -> str:
    return _mac(keys().head, [chain, last_seq, last_mac, origin_seq, origin_mac])


def chain_of(practice_id: uuid.UUID | None) -> str:
    return str(practice_id) if practice_id is not None else NO_PRACTICE


def _practice_of(chain: str) -> uuid.UUID | None:
    return None if chain == NO_PRACTICE else uuid.UUID(chain)


# --- statements -------------------------------------------------------------

_ROW_COLUMNS = ", ".join((*CONTENT_COLUMNS, "row_mac", "seq", "chain_mac"))


def _rows(where: str, tail: str) -> tuple[Sql, Sql]:
    """The statement for a chain of a practice ($1) and for events of none."""
    # Only this module's constants reach the text.
    of_practice = Sql(
        f"SELECT {_ROW_COLUMNS} FROM audit_event WHERE practice_id = $1 AND {where} {tail}",  # noqa: S608
        types=ROW_TYPES,
    )
    of_none = Sql(
        f"SELECT {_ROW_COLUMNS} FROM audit_event WHERE practice_id IS NULL"  # noqa: S608
        f" AND ($1::text IS NULL OR true) AND {where} {tail}",
        types=ROW_TYPES,
        sqlite=f"SELECT {_ROW_COLUMNS} FROM audit_event WHERE practice_id IS NULL"  # noqa: S608
        f" AND ($1 IS NULL OR 1) AND {where} {tail}",
    )
    return of_practice, of_none


UNSEALED = _rows("chain_mac IS NULL", "ORDER BY occurred_at, id LIMIT $2")
SEALED_BEFORE = _rows("seq IS NOT NULL AND seq < $2", "ORDER BY seq LIMIT 1")
SEALED_PAGE = _rows("seq IS NOT NULL AND seq > $2", "ORDER BY seq LIMIT $3")
FIRST_KEPT = (
    Sql(
        "SELECT min(seq) AS seq FROM audit_event"
        " WHERE practice_id = $1 AND seq IS NOT NULL AND occurred_at >= $2"
    ),
    Sql(
        "SELECT min(seq) AS seq FROM audit_event WHERE practice_id IS NULL"
        " AND ($1::text IS NULL OR true) AND seq IS NOT NULL AND occurred_at >= $2",
        sqlite="SELECT min(seq) AS seq FROM audit_event WHERE practice_id IS NULL"
        " AND ($1 IS NULL OR 1) AND seq IS NOT NULL AND occurred_at >= $2",
    ),
)
PRUNE_UP_TO = (
    Sql("DELETE FROM audit_event WHERE practice_id = $1 AND seq IS NOT NULL AND seq <= $2"),
    Sql(
        "DELETE FROM audit_event WHERE practice_id IS NULL AND ($1::text IS NULL OR true)"
        " AND seq IS NOT NULL AND seq <= $2",
        sqlite="DELETE FROM audit_event WHERE practice_id IS NULL AND ($1 IS NULL OR 1)"
        " AND seq IS NOT NULL AND seq <= $2",
    ),
)
MAC_AT = (
    Sql("SELECT chain_mac FROM audit_event WHERE practice_id = $1 AND seq = $2"),
    Sql(
        "SELECT chain_mac FROM audit_event WHERE practice_id IS NULL"
        " AND ($1::text IS NULL OR true) AND seq = $2",
        sqlite="SELECT chain_mac FROM audit_event WHERE practice_id IS NULL"
        " AND ($1 IS NULL OR 1) AND seq = $2",
    ),
)
CHAINS_TO_SEAL = Sql(
    "SELECT DISTINCT practice_id FROM audit_event WHERE chain_mac IS NULL",
    types={"practice_id": AS_UUID},
)
CHAINS_WITH_ROWS = Sql(
    "SELECT DISTINCT practice_id FROM audit_event", types={"practice_id": AS_UUID}
)
NEW_HEAD = Sql(
    "INSERT INTO audit_chain (chain, last_seq, last_mac, origin_seq, origin_mac, head_mac,"
    " updated_at) VALUES ($1, 0, $2, 1, $2, $3, $4) ON CONFLICT (chain) DO NOTHING"
)
HEAD_FOR_UPDATE = Sql(
    "SELECT chain, last_seq, last_mac, origin_seq, origin_mac, head_mac FROM audit_chain"
    " WHERE chain = $1 FOR UPDATE SKIP LOCKED",
    sqlite="SELECT chain, last_seq, last_mac, origin_seq, origin_mac, head_mac FROM audit_chain"
    " WHERE chain = $1",
)
HEADS = Sql(
    "SELECT chain, last_seq, last_mac, origin_seq, origin_mac, head_mac, updated_at"
    " FROM audit_chain ORDER BY chain",
    types={"updated_at": AS_DATETIME},
)
MOVE_HEAD = Sql(
    "UPDATE audit_chain SET last_seq = $2, last_mac = $3, origin_seq = $4, origin_mac = $5,"
    " head_mac = $6, updated_at = $7 WHERE chain = $1 AND last_seq = $8 AND origin_seq = $9"
)
SEAL_ROW = Sql(
    "UPDATE audit_event SET seq = $2, chain_mac = $3 WHERE id = $1 AND chain_mac IS NULL"
)
SEAL_ROWS = Sql(
    "UPDATE audit_event AS a SET seq = v.seq, chain_mac = v.mac"
    " FROM unnest($1::uuid[], $2::bigint[], $3::text[]) AS v(id, seq, mac)"
    " WHERE a.id = v.id AND a.chain_mac IS NULL"
)
GRANT_PRUNE = Sql("INSERT INTO audit_prune_permit (granted_at) VALUES ($1)")
END_PRUNE = Sql("DELETE FROM audit_prune_permit")


def _pick(pair: tuple[Sql, Sql], chain: str) -> Sql:
    return pair[1] if chain == NO_PRACTICE else pair[0]


def _chain_arg(chain: str) -> uuid.UUID | None:
    return _practice_of(chain)


class ChainMoved(Exception):
    """The head changed under the sealer (another one, on SQLite): roll back."""


@dataclass(frozen=True)
class Head:
    chain: str
    last_seq: int
    last_mac: str
    origin_seq: int
    origin_mac: str
    head_mac: str

    @classmethod
    def of(cls, row: Row) -> Head:
        return cls(
            chain=row["chain"],
            last_seq=int(row["last_seq"]),
            last_mac=row["last_mac"],
            origin_seq=int(row["origin_seq"]),
            origin_mac=row["origin_mac"],
            head_mac=row["head_mac"],
        )

    def intact(self) -> bool:
        expected = head_mac(
            self.chain, self.last_seq, self.last_mac, self.origin_seq, self.origin_mac
        )
        return hmac.compare_digest(expected, self.head_mac)


async def _locked_head(reader: Reader, chain: str) -> Head | None:
    """The chain's head, locked for this transaction; None when another
    process holds it (it is sealing or pruning this chain right now)."""
    genesis = GENESIS
    await reader.execute(
        NEW_HEAD, chain, genesis, head_mac(chain, 0, genesis, 1, genesis), clock.now()
    )
    found = await reader.fetch(HEAD_FOR_UPDATE, chain)
    return Head.of(found[0]) if found else None


async def _move_head(reader: Reader, old: Head, new: Head) -> None:
    moved = await reader.execute(
        MOVE_HEAD,
        new.chain,
        new.last_seq,
        new.last_mac,
        new.origin_seq,
        new.origin_mac,
        head_mac(new.chain, new.last_seq, new.last_mac, new.origin_seq, new.origin_mac),
        clock.now(),
        old.last_seq,
        old.origin_seq,
    )
    if moved != 1:
        raise ChainMoved(new.chain)


class HeadAltered(Exception):
    """A chain head whose MAC is wrong: nothing more is sealed onto it."""


# --- sealing ------------------------------------------------------------------


async def seal(batch: int = SEAL_BATCH) -> int:
    """Seals every row not yet in its chain; returns how many it sealed.
    Safe in any number of processes at once."""
    async with reading() as reader:
        chains = [chain_of(row["practice_id"]) for row in await reader.fetch(CHAINS_TO_SEAL)]
    sealed = 0
    for chain in chains:
        while True:
            done = await _seal_batch(chain, batch)
            sealed += done
            if done < batch:
                break
    return sealed


async def _seal_batch(chain: str, batch: int) -> int:
    async with in_transaction(), reading() as reader:
        head = await _locked_head(reader, chain)
        if head is None:
            return 0  # another process is sealing this chain now
        if not head.intact():
            raise HeadAltered(chain)
        rows = await reader.fetch(_pick(UNSEALED, chain), _chain_arg(chain), batch)
        if not rows:
            return 0
        seq, previous = head.last_seq, head.last_mac
        seals: list[tuple[uuid.UUID, int, str]] = []
        for row in rows:
            seq += 1
            previous = chain_mac(chain, seq, previous, row)
            seals.append((row["id"], seq, previous))
        if reader.dialect == "postgres":
            updated = await reader.execute(
                SEAL_ROWS,
                [s[0] for s in seals],
                [s[1] for s in seals],
                [s[2] for s in seals],
            )
        else:
            updated = 0
            for row_id, row_seq, mac in seals:
                updated += await reader.execute(SEAL_ROW, row_id, row_seq, mac)
        if updated != len(seals):
            raise ChainMoved(chain)
        await _move_head(
            reader,
            head,
            Head(chain, seq, previous, head.origin_seq, head.origin_mac, ""),
        )
        return len(seals)


# --- pruning ------------------------------------------------------------------


async def prune(before: datetime, batch: int = PRUNE_BATCH) -> int:
    """Deletes sealed rows older than `before` from the start of each chain
    (never from its middle), recording where each chain now starts; the only
    deletion the audit trail's triggers allow."""
    await seal()
    async with reading() as reader:
        heads = [Head.of(row) for row in await reader.fetch(HEADS)]
    removed = 0
    for head in heads:
        while True:
            done = await _prune_batch(head.chain, before, batch)
            removed += done
            if done < batch:
                break
    return removed


async def _prune_batch(chain: str, before: datetime, batch: int) -> int:
    async with in_transaction(), reading() as reader:
        head = await _locked_head(reader, chain)
        if head is None or not head.intact():
            return 0
        found = await reader.fetch(_pick(FIRST_KEPT, chain), _chain_arg(chain), before)
        first_kept = found[0]["seq"] if found and found[0]["seq"] is not None else None
        last_old = (int(first_kept) - 1) if first_kept is not None else head.last_seq
        up_to = min(last_old, head.origin_seq + batch - 1)
        if up_to < head.origin_seq:
            return 0
        macs = await reader.fetch(_pick(MAC_AT, chain), _chain_arg(chain), up_to)
        if not macs:
            return 0  # a gap where the chain should be: verify-audit says so
        await reader.execute(GRANT_PRUNE, clock.now())
        removed = await reader.execute(_pick(PRUNE_UP_TO, chain), _chain_arg(chain), up_to)
        await reader.execute(END_PRUNE)
        await _move_head(
            reader,
            head,
            Head(chain, head.last_seq, head.last_mac, up_to + 1, macs[0]["chain_mac"], ""),
        )
        return removed


# --- verification -------------------------------------------------------------


@dataclass
class ChainReport:
    chain: str
    checked: int = 0
    pending: int = 0
    legacy: int = 0
    problem: str | None = None


@dataclass
class Verification:
    chains: list[ChainReport] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return all(report.problem is None for report in self.chains)


def _content_intact(row: Row) -> bool:
    mac = row["row_mac"]
    if mac is None:
        return False
    if mac == LEGACY_ROW_MAC:
        return True  # written before the chain: only the chain vouches for it
    return hmac.compare_digest(mac, row_mac(row))


async def verify() -> Verification:
    """Walks every chain from where it starts to its head and names, per
    chain, the first row that was changed, removed or inserted out of order."""
    result = Verification()
    async with reading() as reader:
        heads = {head.chain: head for head in map(Head.of, await reader.fetch(HEADS))}
        with_rows = {chain_of(row["practice_id"]) for row in await reader.fetch(CHAINS_WITH_ROWS)}
        for chain in sorted(set(heads) | with_rows):
            report = ChainReport(chain)
            result.chains.append(report)
            await _verify_chain(reader, chain, heads.get(chain), report)
    return result


async def _verify_chain(reader: Reader, chain: str, head: Head | None, report: ChainReport) -> None:
    if head is not None and not head.intact():
        report.problem = "its head (audit_chain) was changed"
        return
    if head is None:
        sealed = await reader.fetch(_pick(SEALED_PAGE, chain), _chain_arg(chain), 0, 1)
        if sealed:
            report.problem = "its head (audit_chain) was removed"
            return
    else:
        early = await reader.fetch(_pick(SEALED_BEFORE, chain), _chain_arg(chain), head.origin_seq)
        if early:
            report.problem = (
                f"row {early[0]['id']} (seq {early[0]['seq']}) was inserted before where"
                f" the chain starts (seq {head.origin_seq})"
            )
            return
    expected_seq = head.origin_seq if head is not None else 1
    previous = head.origin_mac if head is not None else GENESIS
    after, last_id, seen_new = expected_seq - 1, None, False
    while report.problem is None:
        rows = await reader.fetch(_pick(SEALED_PAGE, chain), _chain_arg(chain), after, VERIFY_PAGE)
        for row in rows:
            seq = int(row["seq"])
            if seq > expected_seq:
                report.problem = (
                    f"row{'s' if seq - expected_seq > 1 else ''} {expected_seq}"
                    f"{f'..{seq - 1}' if seq - expected_seq > 1 else ''} removed before"
                    f" row {row['id']}"
                )
                return
            if not _content_intact(row):
                report.problem = f"row {row['id']} (seq {seq}) was changed"
                return
            if row["row_mac"] == LEGACY_ROW_MAC and seen_new:
                report.problem = f"row {row['id']} (seq {seq}) was inserted out of order"
                return
            seen_new = seen_new or row["row_mac"] != LEGACY_ROW_MAC
            if head is None or not hmac.compare_digest(
                row["chain_mac"] or "", chain_mac(chain, seq, previous, row)
            ):
                report.problem = (
                    f"row {row['id']} (seq {seq}) was inserted out of order or its"
                    " predecessor was changed"
                )
                return
            report.checked += 1
            report.legacy += row["row_mac"] == LEGACY_ROW_MAC
            previous, expected_seq, last_id = row["chain_mac"], seq + 1, row["id"]
        if len(rows) < VERIFY_PAGE:
            break
        after = int(rows[-1]["seq"])
    if head is not None and (head.last_seq != expected_seq - 1 or head.last_mac != previous):
        where = f"after row {last_id}" if last_id is not None else "at the start"
        report.problem = (
            f"rows {expected_seq}..{head.last_seq} were removed {where} (the head is at"
            f" seq {head.last_seq})"
        )
        return
    unsealed = await reader.fetch(_pick(UNSEALED, chain), _chain_arg(chain), 1_000_000)
    for row in unsealed:
        if not _content_intact(row):
            report.problem = f"row {row['id']} (not sealed yet) was changed"
            return
        report.pending += 1
