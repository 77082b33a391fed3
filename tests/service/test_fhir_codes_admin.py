"""A variable's EHR codes through the service: edited in the admin (system|code a line), stored, exported, diffed."""

from __future__ import annotations

from sqlalchemy import select

from service.infra.models import ProtocolVersion, Variable, db
from tests.service.conftest import page_token
from tests.service.test_fhir_pages import fields

BASE = "/api/v1/protocols/NCT07193667"


def _variable_id(app, number: int, name: str) -> int:
    with app.app_context():
        query = select(Variable.id).join(ProtocolVersion).where(ProtocolVersion.number == number, Variable.name == name)
        return db.session.execute(query).scalar_one()


def test_a_writer_edits_a_variables_codes_and_the_diff_and_export_show_them(app, client, signed_in):
    assert client.post(f"{BASE}/versions").status_code == 201  # an amendment: draft version 2
    writer = signed_in("writer")
    url = f"/admin/variables/edit/?id={_variable_id(app, 2, 'hgb')}"
    page = writer.get(url).get_data(as_text=True)
    assert "http://loinc.org|718-7</textarea>" in page
    form = {**fields(page), "csrf_token": page_token(page)}
    refused = writer.post(url, data={**form, "coding": "http://loinc.org|718-7\nloinc 20509-6"}).get_data(as_text=True)
    assert "`loinc 20509-6`: write system|code" in refused
    refused = writer.post(url, data={**form, "coding": "http://loinc.org|7187"}).get_data(as_text=True)
    assert "`7187` is not a LOINC code" in refused
    saved = writer.post(url, data={**form, "coding": "http://loinc.org|718-7\n\nhttp://loinc.org|20509-6\n"})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Variable, _variable_id(app, 2, "hgb")).coding == [
            {"system": "http://loinc.org", "code": "718-7"},
            {"system": "http://loinc.org", "code": "20509-6"},
        ]
    diff = client.get(f"{BASE}/diff?from=1&to=2").get_json()
    (hgb,) = [v for v in diff["variables"] if v["key"] == "hgb"]
    assert [c["text"] for c in hgb["changes"]] == ["EHR codes: added http://loinc.org|20509-6"]
    exported = client.get(f"{BASE}/versions/2/export?format=json").get_json()
    (variable,) = [v for v in exported["variables"] if v["name"] == "hgb"]
    assert variable["coding"] == [
        {"system": "http://loinc.org", "code": "718-7"},
        {"system": "http://loinc.org", "code": "20509-6"},
    ]
