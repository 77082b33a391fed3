"""Value sets and list inputs through the service: import/export, the admin, amendments, the API and the form."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

import rules
from rules.protocol import from_dict, loads
from service import versions
from service.infra.models import ProtocolVersion, ValueSet, db
from tests.rules.test_lists import PROTOCOL
from tests.service.conftest import page_token

CODE = PROTOCOL["protocol"]
BASE = f"/api/v1/protocols/{CODE}"
DAPA = {"code": "A10BK01", "label": "dapagliflozin", "start": "2026-10-01"}


@pytest.fixture
def published(app) -> None:
    with app.app_context():
        versions.publish(versions.import_definition(from_dict(PROTOCOL), created_by="test"), versions.SYSTEM_SIGNATURE)
        db.session.commit()


def _value_set_id(app, number: int, name: str) -> int:
    with app.app_context():
        query = select(ValueSet.id).join(ProtocolVersion).where(ProtocolVersion.number == number, ValueSet.name == name)
        return db.session.execute(query).scalar_one()


def test_value_sets_import_and_export_with_the_file(client):
    text = rules.dump_protocol(from_dict(PROTOCOL))
    response = client.post("/api/v1/protocols/import", data=text, content_type="application/yaml")
    assert response.status_code == 201, response.get_json()
    exported = client.get(f"{BASE}/versions/1/export?format=yaml").get_data(as_text=True)
    assert loads(exported) == from_dict(PROTOCOL)
    described = client.get(f"{BASE}/versions/1").get_json()
    assert [v["name"] for v in described["value_sets"]] == ["sglt2", "metformin", "t1dm"]


def test_a_file_with_a_bad_value_set_is_refused_in_words(client):
    bad = {**PROTOCOL, "value_sets": [{"name": "sglt2", "system": "ATC", "codes": ["E11.9"]}]}
    response = client.post(
        "/api/v1/protocols/import", data=rules.dump_protocol(from_dict(bad)), content_type="application/yaml"
    )
    assert response.status_code == 422
    assert "`E11.9` is not a ATC code" in response.get_data(as_text=True)


def test_an_amendment_copies_the_value_sets_and_an_edit_shows_in_the_diff(app, client, published, signed_in):
    assert client.post(f"{BASE}/versions").status_code == 201
    writer = signed_in("writer")
    value_set = _value_set_id(app, 2, "sglt2")
    url = f"/admin/valuesets/edit/?id={value_set}"
    page = writer.get(url).get_data(as_text=True)
    form = {
        "csrf_token": page_token(page),
        "version": re.search(r'<option selected value="(\d+)"', page).group(1),
        "name": "sglt2",
        "label": "SGLT2 inhibitors",
        "system": "ATC",
        "codes": "A10BK01, A10BK03",
        "half_life": "13 h",
        "help": "",
    }
    refused = writer.post(url, data={**form, "codes": "A10BK01, E11.9"}).get_data(as_text=True)
    assert "`E11.9` is not a ATC code" in refused
    assert writer.post(url, data=form).status_code == 302
    with app.app_context():
        assert db.session.get(ValueSet, value_set).codes == ["A10BK01", "A10BK03"]
        assert versions.find_version(CODE, 1).value_sets[0].codes == ["A10BK*"]
    diff = client.get(f"{BASE}/diff?from=1&to=2").get_json()
    assert [(v["key"], v["status"]) for v in diff["value_sets"]] == [("sglt2", "changed")]
    assert diff["value_sets"][0]["changes"][0]["text"] == "codes: added A10BK01, A10BK03; removed A10BK*"
    markdown = client.get(f"{BASE}/diff?from=1&to=2&format=markdown").get_data(as_text=True)
    assert "## Value sets" in markdown


def test_a_published_value_set_cannot_be_edited_in_the_admin(app, published, signed_in):
    writer = signed_in("writer")
    value_set = _value_set_id(app, 1, "sglt2")
    url = f"/admin/valuesets/edit/?id={value_set}"
    page = writer.get(url).get_data(as_text=True)
    form = {
        "csrf_token": page_token(page),
        "version": re.search(r'<option selected value="(\d+)"', page).group(1),
        "name": "sglt2",
        "label": "SGLT2",
        "system": "ATC",
        "codes": "A10BK01",
    }
    html = writer.post(url, data=form).get_data(as_text=True)
    assert "is published and cannot change" in html
    with app.app_context():
        assert db.session.get(ValueSet, value_set).codes == ["A10BK*"]


def test_a_screening_with_a_list_through_the_api(client, published):
    body = {"protocol": CODE, "subject_id": "S-1", "site": "SITE-1", "screening_date": "2026-11-20"}
    response = client.post("/api/v1/screenings", json={**body, "inputs": {"medications": [DAPA], "diagnoses": []}})
    assert response.status_code == 201, response.get_json()
    result = response.get_json()
    assert result["decision"] == "not_eligible"
    sglt2 = next(c for c in result["result"]["criteria"] if c["code"] == "EX-SGLT2")
    assert "dapagliflozin (A10BK01), started 2026-10-01" in sglt2["sentence"]
    bad = client.post(
        "/api/v1/screenings",
        json={**body, "subject_id": "S-2", "inputs": {"medications": [DAPA, {"code": "A10BK01", "start": "1/10"}]}},
    )
    assert bad.status_code == 422
    fields = [e["field"] for e in bad.get_json()["error"]["errors"]]
    assert fields == ["inputs.medications[1].start"]


def test_the_screening_form_takes_one_entry_per_line(app, published, signed_in):
    screener = signed_in("screener")
    url = f"/screen/{CODE}/all"
    page = screener.get(url).get_data(as_text=True)
    assert 'name="medications"' in page and "One entry per line" in page
    form = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    form.update({"subject_id": "S-9", "site": "SITE-1", "screening_date": "2026-11-20"})
    bad = screener.post(url, data={**form, "medications": "A10BK01, 2026-10-01\nA10BK03, 01/10/2026"})
    html = bad.get_data(as_text=True)
    assert "line 2 (start): &#39;01/10/2026&#39;: expected a date as YYYY-MM-DD" in html
    good = screener.post(
        url, data={**form, "medications": "A10BK01, 2026-10-01, , 10 mg\nA10BA02, 2025-01-01", "diagnoses": "none"}
    )
    assert good.status_code == 302
    result = screener.get(good.headers["Location"]).get_data(as_text=True)
    assert "dapagliflozin" not in result and "A10BK01" in result
