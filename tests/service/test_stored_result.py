"""What a screening stores: the engine's decision, compact; the explanation derived from it when shown."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from rules.engine import default_engine
from rules.explain import explain
from service import record as decision_record
from service import stored_result
from service.infra.models import Screening, db, utcnow
from service.record import verify


def _roundtrip(value):
    return json.loads(json.dumps(value))


def _cases(seed):
    """Every seed test case the engine decides (not the refused ones), ISO dates as a client sends them."""
    for case in seed.test_cases:
        if case.expect != "refused":
            subject = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in case.subject.items()}
            yield case.name, subject
            # And with every third value missing: undecided criteria, missing variables, other branches.
            kept = {"cohort", "screening_date"}
            thinned = {k: v for i, (k, v) in enumerate(subject.items()) if k in kept or i % 3}
            yield f"{case.name}, thinned", thinned


def test_the_explanation_derived_from_a_stored_result_is_the_one_given_when_deciding(compiled, seed):
    engine = default_engine()
    checked = 0
    for name, subject in _cases(seed):
        normalized = compiled.dictionary.normalize(subject)
        evaluation = engine.evaluate(compiled, normalized.values)
        decision = explain(compiled, normalized, evaluation)
        stored = json.loads(stored_result.canonical(stored_result.compact(decision, evaluation)))
        inputs = _roundtrip({k: v for k, v in subject.items() if k not in ("cohort", "screening_date")})
        assert _roundtrip(stored_result.expand(compiled, stored, inputs)) == _roundtrip(decision.to_dict()), name
        # Batches summarise without explaining every criterion: the very same stored result.
        summarized = stored_result.summarize(compiled, normalized, evaluation)
        assert stored_result.canonical(summarized) == stored_result.canonical(stored), name
        checked += 1
    assert checked >= 30


def test_a_screening_stores_the_engines_decision_and_answers_the_whole_explanation(app, client, screening_request):
    body = screening_request("SLE", inputs={"age": 40})  # incomplete: missing variables listed
    answer = client.post("/api/v1/screenings", json=body).get_json()
    with app.app_context():
        stored = db.session.get(Screening, answer["id"]).result
        size = db.session.execute(
            sa.select(sa.func.length(sa.cast(Screening.result, sa.Text))).where(Screening.id == answer["id"])
        ).scalar_one()
    assert stored["format"] == stored_result.FORMAT
    assert (stored["decision"], stored["missing"]) == (answer["decision"], answer["result"]["missing"])
    assert [c["code"] for c in stored["criteria"]] == [c["code"] for c in answer["result"]["criteria"]]
    assert "sentence" not in json.dumps(stored) and size < 10_000  # the explanation is not stored
    assert all(c["sentence"] for c in answer["result"]["criteria"])
    assert client.get(f"/api/v1/screenings/{answer['id']}").get_json() == answer


def test_a_result_stored_whole_before_is_shown_and_replayed_as_it_is(app, client, screening_request):
    """Screenings stored before the compact form keep their whole explanation; the chain still verifies."""
    decided = client.post("/api/v1/screenings", json=screening_request("SSc")).get_json()
    whole = decided["result"]
    with app.app_context():
        first = db.session.get(Screening, decided["id"])
        values = {
            name: getattr(first, name)
            for name in decision_record.HASHED
            if name not in ("id", "result", "previous_id", "idempotency_key")
        }
        values.update(subject_id="S-OLD", result=whole, created_at=utcnow(), previous_id=None, idempotency_key=None)
        table = Screening.__table__
        connection = db.session.connection()
        values["id"] = connection.execute(table.insert().values(values).returning(table.c.id)).scalar_one()
        decision_record.append(connection, values, decision_record.unsealed(values))
        db.session.commit()
        assert verify(db.session.connection()).intact
    shown = client.get(f"/api/v1/screenings/{values['id']}").get_json()
    assert shown["result"] == whole
    replay = client.post(f"/api/v1/screenings/{values['id']}/replay").get_json()
    assert replay["same"] is True and replay["result"] == whole


CSV = """subject_id,site,screening_date,cohort,age [years],anc [/µL]
S-1,SITE-1,2026-11-02,SLE,40,800
S-2,SITE-1,2026-11-02,SLE,41,900
S-1,SITE-1,2026-11-02,SLE,40,1800
"""


@pytest.mark.parametrize("before", [0, 1])
def test_a_subject_twice_in_one_batch_links_to_its_earlier_row(app, client, before):
    earlier = None
    if before:
        first = "\n".join(CSV.splitlines()[:2])
        answer = client.post("/api/v1/screenings/batch?protocol=NCT07193667", data=first, content_type="text/csv")
        earlier = answer.get_json()["rows"][0]["screening_id"]
    rows = client.post("/api/v1/screenings/batch?protocol=NCT07193667", data=CSV, content_type="text/csv").get_json()
    ids = [r["screening_id"] for r in rows["rows"]]
    with app.app_context():
        previous = [db.session.get(Screening, i).previous_id for i in ids]
        assert verify(db.session.connection()).intact
    assert previous == [earlier, None, ids[0]]
