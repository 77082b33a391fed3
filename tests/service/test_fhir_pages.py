"""The screening page's FHIR upload: prefilled form with sources, nothing decided before submit, sources kept."""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from service.infra.models import Screening, db
from tests.service.conftest import page_token

FIXTURES = Path(__file__).parent.parent / "fixtures" / "fhir"
FORM = "/screen/NCT07193667/SLE"
UPLOAD = "/screen/NCT07193667/SLE/fhir"


class _Fields(HTMLParser):
    """The values a browser would submit from a page's first form (inputs, selected options, textareas)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("type") == "checkbox" and "checked" not in a:
            return  # a browser sends a checked box only
        if tag == "input" and a.get("name") and a.get("type") not in ("file", "submit"):
            self.values[a["name"]] = a.get("value") or ""
        elif tag == "select":
            self._select = a.get("name")
            self.values.setdefault(self._select, "")
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a.get("name")
            self.values[self._textarea] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            text = self.values[self._textarea] + data
            self.values[self._textarea] = text.removeprefix("\r\n").removeprefix("\n")  # as browsers read it


def fields(html: str) -> dict[str, str]:
    parser = _Fields()
    parser.feed(html)
    return parser.values


@pytest.fixture
def screener(signed_in):
    return signed_in("screener")


def upload(client, name: str = "sle_r4", content: bytes | None = None, **typed: str):
    page = client.get(FORM).get_data(as_text=True)
    data = {**fields(page), "csrf_token": page_token(page), "subject_id": "FHIR-1", "screening_date": "2026-11-02"}
    data.update(typed)
    body = content if content is not None else (FIXTURES / f"{name}.json").read_bytes()
    data["bundle"] = (io.BytesIO(body), f"{name}.json")
    return client.post(UPLOAD, data=data, content_type="multipart/form-data")


def test_the_screening_page_offers_the_upload_inside_its_form(screener):
    html = screener.get(FORM).get_data(as_text=True)
    assert '<label for="fhir-bundle">FHIR bundle (JSON)</label>' in html
    assert f'formaction="{UPLOAD}" formenctype="multipart/form-data"' in html
    form = html.index('<form method="post" class="screening"')
    assert form < html.index('id="fhir-bundle"') < html.rindex("</form>")


def test_an_upload_prefills_the_form_with_each_source_and_decides_nothing(app, screener):
    response = upload(screener, sleda="")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    values = fields(html)
    assert values["hgb"] == "11.8 g/dL"  # another unit than the dictionary's is typed after the number
    assert (values["tbil"], values["tbil_uln"]) == ("0.7 mg/dL", "1.2")
    assert (values["age"], values["sex"], values["hbsag_positive"]) == ("40", "female", "no")
    assert values["subject_id"] == "FHIR-1"  # what the screener typed is kept
    assert values["sledai_2k"] == ""  # what the bundle lacks stays empty
    assert "From the EHR: 11.8 g/dL · Observation/sle-1-hgb, 2026-10-20 (LOINC 718-7)" in html
    assert "values the bundle does not give" in html and "SLEDAI-2000" in html
    with app.app_context():
        assert db.session.query(Screening).count() == 0


def test_submitting_the_prefilled_form_stores_the_sources_with_the_screening(app, screener, subject):
    html = upload(screener).get_data(as_text=True)
    data = fields(html)
    for name, value in subject("SLE").items():  # the screener completes what the bundle lacks
        if data.get(name) != "" or name in ("cohort", "screening_date"):
            continue
        if isinstance(value, dict):
            data[name] = f"{value['value']} {value['unit']}"
        else:
            data[name] = ("yes" if value else "no") if isinstance(value, bool) else str(value)
    data["wbc"] = "4,3"  # corrected by the screener
    response = screener.post(UPLOAD, data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        screening = db.session.query(Screening).one()
        assert screening.decision == "eligible"
        assert screening.sources["hgb"] == {
            "resource": "Observation/sle-1-hgb",
            "date": "2026-10-20",
            "code": "http://loinc.org|718-7",
            "recorded": "11.8 g/dL",
            "changed": False,
        }
        assert screening.sources["wbc"]["changed"] is True
        assert "sledai_2k" not in screening.sources
        assert screening.inputs["hgb"] == {"value": "11.8", "unit": "g/dL"}  # the inputs as the form submits them
    result = screener.get(response.headers["Location"]).get_data(as_text=True)
    assert "Values from the EHR" in result
    assert (
        "<td>Haemoglobin</td><td>11.8 g/dL</td><td>Observation/sle-1-hgb</td><td>2026-10-20</td><td>LOINC 718-7</td>"
        in result
    )
    assert "White blood cell count <strong>(changed by the screener)</strong>" in result


def test_a_refused_value_keeps_the_sources_on_the_form(app, screener):
    data = fields(upload(screener).get_data(as_text=True))
    data["hgb"] = "lots"
    html = screener.post(UPLOAD, data=data).get_data(as_text=True)
    assert 'aria-invalid="true"' in html
    assert "From the EHR: 11.8 g/dL · Observation/sle-1-hgb" in html
    assert fields(html)["fhir_prefill"] == data["fhir_prefill"]
    with app.app_context():
        assert db.session.query(Screening).count() == 0


def test_a_tampered_token_stores_the_values_without_sources(app, screener, subject):
    data = fields(upload(screener).get_data(as_text=True))
    data["fhir_prefill"] = data["fhir_prefill"][:-4] + "AAAA"
    assert screener.post(UPLOAD, data=data).status_code == 302
    with app.app_context():
        assert db.session.query(Screening).one().sources is None


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"{not json", "the file is not JSON"),
        (json.dumps({"resourceType": "Patient"}).encode(), "the upload is not a FHIR Bundle"),
        (
            json.dumps(
                {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": {"resourceType": "Observation"}}],
                }
            ).encode(),
            "<code>entry[0].resource.code</code>",
        ),
    ],
)
def test_a_bad_upload_is_said_beside_the_control_and_keeps_what_was_typed(app, screener, content, said):
    html = upload(screener, content=content, hgb="120").get_data(as_text=True)
    assert said in html and 'role="alert"' in html and 'aria-invalid="true"' in html
    assert fields(html)["hgb"] == "120"
    assert 'name="fhir_prefill"' not in html


def test_only_screeners_upload(signed_in):
    writer = signed_in("writer")
    token = page_token(writer.get("/").get_data(as_text=True))
    assert writer.post(UPLOAD, data={"csrf_token": token}).status_code == 403
