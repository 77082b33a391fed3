"""The decision record: screenings hash-chained and verified; idempotent POSTs; signed publication over the API."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import hashlib
import itertools
import json

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from service.cli import main
from service.infra.models import DecisionRecord, Screening, db
from service.record import HASHED, record_hash, unsealed, verify
from tests.service.test_batch import GOOD

SEED = "/api/v1/protocols/NCT07193667"


def _screen(client, screening_request, n: int) -> list[int]:
    return [
        client.post("/api/v1/screenings", json=screening_request(subject_id=f"S-{i:03}")).get_json()["id"]
        for i in range(n)
    ]


def _verify(app):
    with app.app_context():
        return verify(db.session.connection(), chunk=2)


def _tamper(app, statement: str) -> None:
    """What someone with direct database access could do: the triggers are dropped first."""
    with app.app_context():
        connection = db.session.connection()
        if connection.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE screenings DISABLE TRIGGER USER"))
            connection.execute(text("ALTER TABLE decision_records DISABLE TRIGGER USER"))
        else:
            for trigger in ("screenings_kept_update", "screenings_kept_delete", "decision_records_kept_delete"):
                connection.execute(text(f"DROP TRIGGER {trigger}"))
        connection.execute(text(statement))
        db.session.commit()


def test_every_screening_is_chained_and_the_chain_verifies(app, client, screening_request):
    ids = _screen(client, screening_request, 3)
    batch = client.post("/api/v1/screenings/batch?protocol=NCT07193667", data=GOOD, content_type="text/csv")
    assert batch.status_code == 201
    result = _verify(app)
    assert result.intact, result.problems
    with app.app_context():
        stored = db.session.query(Screening).count()
        records = db.session.query(DecisionRecord).order_by(DecisionRecord.seq).all()
    assert result.checked == stored == len(records) > 3
    assert [r.screening_id for r in records[:3]] == ids
    shown = client.get(f"/api/v1/screenings/{ids[1]}").get_json()["record"]
    assert shown == {"seq": 2, "hash": records[1].record_hash}
    assert all(later.prev_hash == earlier.record_hash for earlier, later in itertools.pairwise(records))


@pytest.mark.parametrize(
    ("statement", "found"),
    [
        ("UPDATE screenings SET decision = 'not_eligible' WHERE id = 2", "record 2: screening 2 was changed"),
        ("UPDATE screenings SET inputs = '{}' WHERE id = 3", "record 3: screening 3 was changed"),
        ("DELETE FROM decision_records WHERE seq = 2", "record 2 is missing"),
    ],
)
def test_any_later_change_is_found_where_it_was_made(app, client, screening_request, statement, found):
    _screen(client, screening_request, 4)
    _tamper(app, statement)
    result = _verify(app)
    assert not result.intact
    assert any(problem.startswith(found) for problem in result.problems), result.problems


def test_the_verify_command_prints_the_head_and_fails_on_a_broken_chain(
    app, client, database_url, screening_request, monkeypatch
):
    monkeypatch.setenv("ELIGO_DATABASE_URL", database_url)
    _screen(client, screening_request, 2)
    intact = CliRunner().invoke(main, ["verify"])
    assert intact.exit_code == 0 and "2 record(s) checked; head 2 " in intact.output
    _tamper(app, "UPDATE screenings SET site = 'SITE-9' WHERE id = 1")
    broken = CliRunner().invoke(main, ["verify"])
    assert broken.exit_code == 1 and "record 1: screening 1 was changed after it was recorded" in broken.output


def test_a_retried_post_with_the_same_key_stores_the_screening_once(app, client, screening_request):
    body = screening_request()
    first = client.post("/api/v1/screenings", json=body, headers={"Idempotency-Key": "k-1"})
    again = client.post("/api/v1/screenings", json=body, headers={"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.get_json() == first.get_json()
    other = client.post(
        "/api/v1/screenings", json={**body, "subject_id": "S-OTHER"}, headers={"Idempotency-Key": "k-1"}
    )
    assert other.status_code == 422 and other.get_json()["error"]["errors"][0]["field"] == "Idempotency-Key"
    bad = client.post("/api/v1/screenings", json=body, headers={"Idempotency-Key": "with space"})
    assert bad.status_code == 400
    with app.app_context():
        assert db.session.query(Screening).count() == 1


def test_racing_retries_store_once(app, screening_request, client_for):
    body = screening_request()

    def post(_: int) -> tuple[int, int]:
        client = client_for(app, "screener")
        response = client.post("/api/v1/screenings", json=body, headers={"Idempotency-Key": "race"})
        return response.status_code, response.get_json().get("id", 0)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, range(8)))
    assert {status for status, _ in answers} == {201} and len({i for _, i in answers}) == 1
    with app.app_context():
        assert db.session.query(Screening).count() == 1
        assert verify(db.session.connection()).intact


def test_publishing_over_the_api_is_signed(client_as):
    client_as("writer").post(f"{SEED}/versions", json={})
    reviewer = client_as("reviewer")
    missing = reviewer.post(f"{SEED}/versions/2/publish", json={})
    assert missing.status_code == 422
    assert {e["field"] for e in missing.get_json()["error"]["errors"]} == {"password", "reason"}
    wrong = reviewer.post(f"{SEED}/versions/2/publish", json={"password": "pw-writer", "reason": "ok"})
    assert wrong.status_code == 403
    signed = reviewer.post(f"{SEED}/versions/2/publish", json={"password": "pw-reviewer", "reason": " per SAP v2 "})
    assert signed.status_code == 200
    body = signed.get_json()
    assert (body["status"], body["published_by"], body["publish_reason"]) == ("published", "reviewer", "per SAP v2")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3).map(tuple)
        | st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(inputs=JSON, result=JSON)
def test_a_record_hashes_the_same_before_it_is_stored_and_after_it_is_read_back(inputs, result):
    screening = {name: None for name in HASHED} | {
        "inputs": inputs,
        "result": result,
        "created_at": dt.datetime(2026, 11, 27, 13, 0, 0, 123456),
        "screening_date": dt.date(2026, 11, 2),
    }
    stored = {**screening, "inputs": json.loads(json.dumps(inputs)), "result": json.loads(json.dumps(result))}
    assert record_hash(7, "a" * 64, screening) == record_hash(7, "a" * 64, stored)


@given(
    inputs=JSON,
    result=JSON,
    ids=st.tuples(st.integers(1, 2**31 - 1), st.none() | st.integers(1, 2**31 - 1)),
    seq=st.integers(1, 2**40),
    spliced=st.booleans(),
)
def test_a_record_sealed_under_the_lock_hashes_as_its_canonical_json(inputs, result, ids, seq, spliced):
    """The record's text is encoded before the writer's lock with markers for what only the lock can tell;
    sealed, it must hash exactly as the canonical JSON written out whole (every stored chain depends on it)."""
    screening = {name: None for name in HASHED} | {
        "inputs": inputs,
        "result": result,
        "created_at": dt.datetime(2026, 11, 27, 13, 0, 0, 123456),
        "screening_date": dt.date(2026, 11, 2),
        "subject_id": "S-\u00e9",
    }
    unsealed_text = unsealed(
        screening, json.dumps(result, sort_keys=True, separators=(",", ":"), ensure_ascii=False) if spliced else None
    )
    screening |= {"id": ids[0], "previous_id": ids[1]}
    plain = {**screening, "created_at": "2026-11-27T13:00:00.123456", "screening_date": "2026-11-02"}
    canonical = json.dumps(
        {"seq": seq, "prev": "b" * 64, "screening": plain},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert unsealed_text.seal(seq, "b" * 64, *ids) == expected == record_hash(seq, "b" * 64, screening)
