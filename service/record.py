"""The decision record: every stored screening hashed with its inputs, version hash and result, chained.

Each screening gets one record `seq` with `record_hash = sha256(canonical {seq, prev, screening})`,
where `prev` is the record hash before it. Changing, inserting or deleting any screening or record
row afterwards breaks the chain at that point, which `verify` reports. Truncating the tail cannot be
seen from inside the database: keep the head that `eligo verify` prints somewhere else (a report,
an e-mail) and compare.

Appending is serialised: PostgreSQL takes a transaction-scoped advisory lock; SQLite already holds
its single writer lock once the screening row is written, which is always done first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.engine import Connection

GENESIS = "0" * 64
CHAIN_LOCK = 0x454C4947  # "ELIG": the advisory lock key for appending to the chain
HASHED = (
    "id",
    "protocol_id",
    "version_id",
    "content_hash",
    "subject_id",
    "site",
    "cohort",
    "screening_date",
    "inputs",
    "decision",
    "result",
    "previous_id",
    "created_at",
    "created_by",
    "idempotency_key",
)

_TYPES: dict[str, Any] = {
    "inputs": sa.JSON(),
    "result": sa.JSON(),
    "created_at": sa.DateTime(),
    "screening_date": sa.Date(),
}
_screenings = sa.table("screenings", *(sa.column(name, _TYPES.get(name)) for name in HASHED))
_records = sa.table(
    "decision_records", sa.column("seq"), sa.column("screening_id"), sa.column("prev_hash"), sa.column("record_hash")
)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# What only the chain's writer can tell a record: its place, the hash before it, and the screening's ids.
_SEALED_LAST = ("seq", "prev", "id", "previous_id")


@dataclass(frozen=True)
class Unsealed:
    """A record's canonical text, encoded, with what only the writer's lock can tell left as markers.

    Encoding the screening (its inputs, the result spliced in) is most of a record hash's cost; it
    is done before the screening's insert takes the writer's lock, and under the lock only the
    markers are replaced and the text hashed, so other writers wait less.
    """

    text: str
    markers: dict[str, str]  # each of _SEALED_LAST: its marker as it reads in the text

    def seal(self, seq: int, prev: str, screening_id: int, previous_id: int | None) -> str:
        text = self.text
        for name, value in zip(_SEALED_LAST, (seq, prev, screening_id, previous_id), strict=True):
            text = text.replace(self.markers[name], json.dumps(value, ensure_ascii=False), 1)
        return hashlib.sha256(text.encode()).hexdigest()


def unsealed(screening: Mapping[str, Any], result_text: str | None = None) -> Unsealed:
    """A screening's record text before its ids and place in the chain are known (see `record_hash`).

    Markers are JSON strings with a NUL and a random token, which no stored text can hold (NULs are
    refused at the door), each replaced by its value's JSON: the text is the one encoding the values
    directly would give.
    """
    token = secrets.token_hex(8)
    marker = {name: f"\x00{name}-{token}" for name in (*_SEALED_LAST, "result")}
    values = {name: marker[name] if name in ("id", "previous_id") else _plain(screening[name]) for name in HASHED}
    if result_text is not None:
        values["result"] = marker["result"]
    body = {"seq": marker["seq"], "prev": marker["prev"], "screening": values}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if result_text is not None:
        text = text.replace(json.dumps(marker["result"], ensure_ascii=False), result_text, 1)
    return Unsealed(text, {name: json.dumps(marker[name], ensure_ascii=False) for name in _SEALED_LAST})


def record_hash(seq: int, prev: str, screening: Mapping[str, Any], result_text: str | None = None) -> str:
    """The hash of one record over its canonical JSON (sorted keys, no spaces).

    The in-memory values (before the insert) and the stored ones (JSON columns read back) encode
    alike: tuples and lists both become arrays, floats keep their shortest repr, keys are strings.
    `result_text`, when given, is the result's canonical JSON already encoded (by the engine process
    that explained it, for batches): it is spliced in where the result goes, giving the same text.
    """
    return unsealed(screening, result_text).seal(seq, prev, screening["id"], screening["previous_id"])


# Built once: constructing a statement costs more than running these two.
_HEAD = select(_records.c.seq, _records.c.record_hash).order_by(_records.c.seq.desc()).limit(1)
_INSERT = _records.insert()
_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)")


# The chain's head as two columns another statement can return (a screening's insert does): read in
# the same statement as the write that takes SQLite's writer lock, it costs the lock no statement.
HEAD_SEQ = _HEAD.with_only_columns(_records.c.seq).scalar_subquery()
HEAD_HASH = _HEAD.with_only_columns(_records.c.record_hash).scalar_subquery()


def _head(connection: Connection) -> tuple[int, str]:
    row = connection.execute(_HEAD).first()
    return (row[0], row[1]) if row else (0, GENESIS)


def take_turn(connection: Connection) -> None:
    """Serialise appending: PostgreSQL takes a transaction-scoped advisory lock (SQLite's writer lock,
    taken by the write that comes first, already serialises its writers)."""
    if connection.dialect.name == "postgresql":
        connection.execute(_LOCK, {"key": CHAIN_LOCK})


def append_many(connection: Connection, screenings: Sequence[tuple[Mapping[str, Any], str | None]]) -> None:
    """Chain many just-written screenings in order, in the current transaction, with one insert."""
    if not screenings:
        return
    take_turn(connection)
    seq, prev = _head(connection)
    rows = []
    for screening, result_text in screenings:
        seq += 1
        digest = record_hash(seq, prev, screening, result_text)
        rows.append({"seq": seq, "screening_id": screening["id"], "prev_hash": prev, "record_hash": digest})
        prev = digest
    connection.execute(_INSERT, rows)


@dataclass(frozen=True)
class Link:
    """A screening's place in the chain, as its answer shows it."""

    seq: int
    prev_hash: str
    record_hash: str


def append(
    connection: Connection,
    screening: Mapping[str, Any],
    text: Unsealed,
    head: tuple[int | None, str | None] | None = None,
) -> Link:
    """Chain a just-written screening (by its column values) in the current transaction, with its record's
    text encoded beforehand (`unsealed`, outside the writer's lock).

    `head` is the chain's head (HEAD_SEQ, HEAD_HASH; NULL for an empty chain) when the caller read it
    with the screening's insert, its turn taken before (`take_turn`); otherwise it is read here.
    """
    if head is None:
        take_turn(connection)
        seq, prev = _head(connection)
    else:
        seq, prev = head[0] or 0, head[1] or GENESIS
    link = Link(seq + 1, prev, text.seal(seq + 1, prev, screening["id"], screening["previous_id"]))
    connection.execute(
        _INSERT, {"seq": link.seq, "screening_id": screening["id"], "prev_hash": prev, "record_hash": link.record_hash}
    )
    return link


def chain_existing(connection: Connection) -> int:
    """Chain, in id order, every screening not yet in the record (for the migration that introduced it)."""
    chained = select(_records.c.screening_id)
    rows = connection.execute(
        select(_screenings).where(_screenings.c.id.not_in(chained)).order_by(_screenings.c.id)
    ).mappings()
    count = 0
    for row in rows.all():
        values = dict(row)
        append(connection, values, unsealed(values))
        count += 1
    return count


@dataclass
class Verification:
    checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def _chained(connection: Connection, chunk: int) -> Iterator[Mapping[Any, Any]]:
    last = 0
    while True:
        rows = (
            connection.execute(
                select(_records, _screenings)
                .select_from(_records.outerjoin(_screenings, _screenings.c.id == _records.c.screening_id))
                .where(_records.c.seq > last)
                .order_by(_records.c.seq)
                .limit(chunk)
            )
            .mappings()
            .all()
        )
        if not rows:
            return
        yield from rows
        last = rows[-1]["seq"]


def verify(connection: Connection, chunk: int = 1000) -> Verification:
    """Walk the whole record: every hash recomputed, every link checked, every screening chained once."""
    result = Verification()
    prev, expected_seq = GENESIS, 1
    for row in _chained(connection, chunk):
        seq = row["seq"]
        if seq != expected_seq:
            result.problems.append(f"record {expected_seq} is missing (the next is {seq})")
        if row["prev_hash"] != prev:
            result.problems.append(f"record {seq} does not follow record {seq - 1}: the chain was cut or rewritten")
        if row["id"] is None:
            result.problems.append(f"record {seq}: screening {row['screening_id']} is gone")
        elif record_hash(seq, row["prev_hash"], row) != row["record_hash"]:
            result.problems.append(f"record {seq}: screening {row['id']} was changed after it was recorded")
        prev, expected_seq = row["record_hash"], seq + 1
        result.checked += 1
        result.head_seq, result.head_hash = seq, row["record_hash"]
    unchained = connection.execute(
        select(sa.func.count()).select_from(_screenings).where(_screenings.c.id.not_in(select(_records.c.screening_id)))
    ).scalar_one()
    if unchained:
        result.problems.append(f"{unchained} screening(s) are not in the decision record")
    return result
