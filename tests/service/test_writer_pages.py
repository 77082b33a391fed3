"""The protocol writer's pages in the admin, each form submitted: a protocol from scratch, its dictionary,
criteria in order, test cases as forms, Run all tests, Try it, upload and download of protocol files."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

import pytest
import yaml

import rules
from service.infra.models import Protocol, ProtocolVersion, TestCase, db
from tests.service.conftest import page_token


def _post(client, url: str, data: dict[str, Any], **kwargs: Any):
    """Submit a page's form as a browser does: GET it for its CSRF token, then POST."""
    token = page_token(client.get(url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data}, **kwargs)


def _errors(page: str) -> list[str]:
    """Messages under fields: ours (`Label: message`) and Flask-Admin's model forms' (a list)."""
    ours = re.findall(r'class="invalid-feedback[^"]*"[^>]*>([^<]+)<', page)
    theirs = re.findall(r'<ul class="form-text text-danger ">\s*<li>([^<]+)</li>', page)
    return [html.unescape(re.sub(r"\s+", " ", e).strip()) for e in [*ours, *theirs] if e.strip()]


@pytest.fixture
def writer(signed_in):
    return signed_in("writer")


def _create(writer, code: str = "DEMO-1", title: str = "A small demo trial") -> int:
    response = _post(writer, "/admin/protocols/new/", {"code": code, "title": title, "description": "", "source": ""})
    assert response.status_code == 302, _errors(response.get_data(as_text=True))
    return int(response.headers["Location"].rsplit("/", 1)[1])


VARIABLES = [
    {"name": "age", "label": "Age", "type": "number", "unit": "years", "minimum": "0", "maximum": "120"},
    {"name": "egfr", "label": "eGFR", "type": "number", "unit": "mL/min/1.73m2", "minimum": "0", "maximum": "200"},
    {"name": "pregnant", "label": "Pregnant", "type": "boolean"},
]
CRITERIA = [
    {"code": "IN-01", "kind": "inclusion", "text": "Adults", "rule": "age >= 18 years"},
    {"code": "IN-02", "kind": "inclusion", "text": "Kidney function", "rule": "egfr >= 30 mL/min/1.73m2"},
    {"code": "EX-01", "kind": "exclusion", "text": "Pregnancy", "rule": "pregnant"},
]


def _add(writer, endpoint: str, version_id: int, data: dict[str, str]):
    return _post(writer, f"/admin/{endpoint}/new/?version_id={version_id}", {"version": str(version_id), **data})


@pytest.fixture
def draft(app, writer) -> int:
    """DEMO-1 version 1, made through the forms: three variables, three criteria, no cohorts."""
    version_id = _create(writer)
    for variable in VARIABLES:
        assert _add(writer, "variables", version_id, {"section": "Screening", **variable}).status_code == 302
    for criterion in CRITERIA:
        assert _add(writer, "criteria", version_id, criterion).status_code == 302
    return version_id


def _version(app, version_id: int) -> ProtocolVersion:
    return db.session.get(ProtocolVersion, version_id)


def test_a_writer_creates_a_protocol_and_its_first_draft(app, writer):
    version_id = _create(writer)
    with app.app_context():
        version = _version(app, version_id)
        assert (version.protocol.code, version.number, version.status) == ("DEMO-1", 1, "draft")
        assert version.title == "A small demo trial" and version.based_on is None
    page = writer.get(f"/admin/workbench/{version_id}").get_data(as_text=True)
    assert "No cohorts" in page and f"/admin/variables/new/?version_id={version_id}" in page


@pytest.mark.parametrize(
    ("code", "title", "message"),
    [
        ("NCT07193667", "Again", "exists"),
        ("1-bad code", "T", "is not a code"),
        ("DEMO-2", "", "This field is required"),
    ],
)
def test_a_protocol_that_cannot_be_created_is_refused_on_its_field(app, writer, code, title, message):
    response = _post(writer, "/admin/protocols/new/", {"code": code, "title": title})
    assert response.status_code == 200
    assert any(message in error for error in _errors(response.get_data(as_text=True))), response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Protocol).count() == 1


def test_a_reviewer_cannot_create_a_protocol(app, signed_in):
    response = _post(signed_in("reviewer"), "/admin/protocols/new/", {"code": "DEMO-9", "title": "T"})
    assert response.status_code == 200
    with app.app_context():
        assert db.session.query(Protocol).filter_by(code="DEMO-9").count() == 0


def test_variables_with_their_range_and_criteria_are_created_in_a_new_draft(app, draft):
    with app.app_context():
        definition = _version(app, draft).to_definition()
    age = definition.variables[0]
    assert (age.name, age.unit, age.minimum, age.maximum) == ("age", "years", 0.0, 120.0)
    assert [c.code for c in definition.criteria] == ["IN-01", "IN-02", "EX-01"]
    rules.compile_protocol(definition)


def test_a_criterion_with_an_unknown_variable_is_refused_in_a_new_draft(app, writer, draft):
    response = _add(writer, "criteria", draft, {"code": "IN-09", "kind": "inclusion", "text": "t", "rule": "agee > 1"})
    assert response.status_code == 200 and "unknown variable `agee`" in response.get_data(as_text=True)


def test_criteria_move_up_and_down_in_the_protocols_order(app, writer, draft):
    with app.app_context():
        ex = next(c for c in _version(app, draft).criteria if c.code == "EX-01")
        ex_id = ex.id
    url = f"/admin/workbench/{draft}/move"
    page = writer.get(f"/admin/workbench/{draft}").get_data(as_text=True)
    token = page_token(page)
    assert writer.post(url, data={"csrf_token": token, "id": ex_id, "offset": "-1"}).status_code == 302
    writer.post(url, data={"csrf_token": token, "id": ex_id, "offset": "-1"})
    writer.post(url, data={"csrf_token": token, "id": ex_id, "offset": "-1"})  # already first: stays
    with app.app_context():
        assert [c.code for c in _version(app, draft).criteria] == ["EX-01", "IN-01", "IN-02"]
    writer.post(url, data={"csrf_token": token, "id": ex_id, "offset": "1"})
    with app.app_context():
        assert [c.code for c in _version(app, draft).criteria] == ["IN-01", "EX-01", "IN-02"]
    assert writer.post(url, data={"csrf_token": token, "id": ex_id, "offset": "5"}).status_code == 400
    assert writer.post(url, data={"id": ex_id, "offset": "1"}).status_code in (302, 400)  # no token: not moved
    with app.app_context():
        assert [c.code for c in _version(app, draft).criteria] == ["IN-01", "EX-01", "IN-02"]


def test_a_published_version_cannot_be_reordered(app, writer):
    with app.app_context():
        seed = ProtocolVersion.query.filter_by(number=1).first()
        seed_id, first = seed.id, seed.criteria[1].id
    assert "eligo-move" not in writer.get(f"/admin/workbench/{seed_id}").get_data(as_text=True)
    token = page_token(writer.get("/admin/upload/").get_data(as_text=True))
    response = writer.post(f"/admin/workbench/{seed_id}/move", data={"csrf_token": token, "id": first, "offset": -1})
    assert response.status_code == 302
    assert "Not moved" in writer.get(response.headers["Location"]).get_data(as_text=True)


CASE = {"name": "An adult with good kidneys", "screening_date": "2026-11-02", "age": "40", "egfr": "75"}


def test_a_test_case_is_made_with_the_dictionarys_form(app, writer, draft):
    page = writer.get(f"/admin/testcases/new/?version_id={draft}").get_data(as_text=True)
    assert 'name="age"' in page and 'name="pregnant"' in page and "mL/min/1.73m2" in page
    assert 'name="cohort"' not in page  # no cohorts: no cohort choice
    assert "<textarea" not in page  # no raw JSON
    data = {**CASE, "pregnant": "no", "expect": "eligible", "outcome_0": "pass", "outcome_2": "pass", "missing": []}
    response = _post(writer, f"/admin/testcases/new/?version_id={draft}", data)
    assert response.status_code == 302, _errors(response.get_data(as_text=True))
    with app.app_context():
        case = _version(app, draft).test_cases[0].to_definition()
    assert case.subject == {"screening_date": "2026-11-02", "age": 40, "egfr": 75, "pregnant": False}
    assert case.outcomes == {"IN-01": "pass", "EX-01": "pass"}
    assert case.missing is None  # blank: not checked
    assert (case.expect, case.refused) == ("eligible", ())


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"age": "150"}, "Age", "a plausible value between 0 and 120"),
        ({"egfr": "lots"}, "eGFR", "'lots'"),
        ({"outcome_1": "maybe"}, "IN-02", "Not a valid choice"),
        ({"expect": "fine"}, "Expected decision", "Not a valid choice"),
        ({"missing": ["weight"]}, "Expected missing", "not a valid choice"),
        ({"screening_date": ""}, "Screening date", "required"),
        ({"expect": "refused"}, "Refused fields", "the fields the input is refused on"),
    ],
)
def test_a_test_case_that_cannot_be_checked_is_refused_on_its_field(app, writer, draft, changes, field, message):
    response = _post(writer, f"/admin/testcases/new/?version_id={draft}", {**CASE, "expect": "eligible", **changes})
    assert response.status_code == 200
    errors = _errors(response.get_data(as_text=True))
    assert any(e.startswith(f"{field}:") and message in e for e in errors), errors
    with app.app_context():
        assert _version(app, draft).test_cases == []


def test_a_test_case_is_edited_in_its_form_and_keeps_its_name_unique(app, writer, draft):
    url = f"/admin/testcases/new/?version_id={draft}"
    _post(writer, url, {**CASE, "expect": "eligible"})
    _post(writer, url, {**CASE, "name": "A child", "age": "12", "expect": "not_eligible", "outcome_0": "fail"})
    with app.app_context():
        child = next(t for t in _version(app, draft).test_cases if t.name == "A child").id
    edit = f"/admin/testcases/edit/?id={child}"
    page = writer.get(edit).get_data(as_text=True)
    assert re.search(r'name="age"[^>]*value="12"', page)
    assert '<option selected value="fail">' in page
    response = _post(writer, edit, {**CASE, "name": CASE["name"], "age": "12", "expect": "not_eligible"})
    assert any("a name no other test case has" in e for e in _errors(response.get_data(as_text=True)))
    response = _post(writer, edit, {**CASE, "name": "A child of 11", "age": "11", "expect": "not_eligible"})
    assert response.status_code == 302
    with app.app_context():
        case = db.session.get(TestCase, child)
        assert (case.name, case.subject["age"], case.outcomes) == ("A child of 11", 11, {})


def test_a_stored_case_that_no_longer_fits_the_dictionary_is_shown_with_its_problem(app, writer, draft):
    with app.app_context():
        version = _version(app, draft)
        version.test_cases.append(
            TestCase(name="old", subject={"screening_date": "2026-11-02", "age": 200}, expect="eligible", position=0)
        )
        db.session.commit()
        case_id = version.test_cases[0].id
    response = _post(
        writer,
        f"/admin/testcases/edit/?id={case_id}",
        {"name": "old", "screening_date": "2026-11-02", "age": "200", "expect": "eligible"},
    )
    assert any(e.startswith("Age:") and "between 0 and 120" in e for e in _errors(response.get_data(as_text=True)))


def test_run_all_tests_shows_a_pass_fail_table_with_expected_and_got(app, writer, draft):
    url = f"/admin/testcases/new/?version_id={draft}"
    _post(writer, url, {**CASE, "pregnant": "no", "expect": "eligible", "outcome_1": "pass"})
    _post(writer, url, {**CASE, "name": "Wrong on purpose", "age": "12", "expect": "eligible", "outcome_0": "pass"})
    page = writer.get(f"/admin/workbench/{draft}/tests").get_data(as_text=True)
    assert 'data-tests="failed"' in page and "1 of 2 test case(s) fail" in page
    failing = page[page.index('data-case="Wrong on purpose"') :]
    failing = failing[: failing.index("</table>")]
    assert 'data-result="fail"' in failing
    assert re.search(r'data-check="decision"><td>decision</td><td>eligible</td><td>not_eligible ✗', failing)
    assert re.search(r'data-check="outcome IN-01"><td>outcome IN-01</td><td>pass</td><td>fail ✗', failing)
    assert page.index("Wrong on purpose") < page.index(CASE["name"])  # failures first
    with app.app_context():
        db.session.delete(next(t for t in _version(app, draft).test_cases if t.name == "Wrong on purpose"))
        db.session.commit()
    page = writer.get(f"/admin/workbench/{draft}/tests").get_data(as_text=True)
    assert 'data-tests="passed"' in page and "All 1 test case(s) pass" in page


def test_run_all_tests_on_the_published_seed_passes(signed_in):
    page = signed_in("reviewer").get("/admin/workbench/1/tests").get_data(as_text=True)
    assert "All 17 test case(s) pass" in page


def test_try_it_shows_failures_first_beside_the_published_answer(app, client, signed_in, subject):
    client.post("/api/v1/protocols/NCT07193667/versions", json={"from": 1})
    with app.app_context():
        draft = ProtocolVersion.query.filter_by(number=2).one()
        next(c for c in draft.criteria if c.code == "IN-03b").rule = "anc >= 5 x10^9/L"
        db.session.commit()
        draft_id = draft.id
    import json

    response = _post(signed_in("writer"), f"/admin/tryit/?version_id={draft_id}", {"subject": json.dumps(subject())})
    page = response.get_data(as_text=True)
    assert 'data-decision="not_eligible"' in page and 'data-published="eligible"' in page
    rows = re.findall(r'data-criterion="([^"]+)"( data-differs)?', page)
    assert rows[0] == ("IN-03b", " data-differs")  # the failure first, and it differs from the published answer
    assert all(not differs for _, differs in rows[1:])


def test_a_version_downloads_as_the_yaml_the_cli_exports(app, writer):
    response = writer.get("/admin/workbench/1/download.yaml")
    assert response.headers["Content-Disposition"] == "attachment; filename=NCT07193667-v1.yaml"
    assert rules.loads_protocol(response.get_data(as_text=True)).content_hash == rules.seed_protocol().content_hash
    assert writer.get("/admin/workbench/1/download.json").get_json()["protocol"] == "NCT07193667"
    assert writer.get("/admin/workbench/1/download.xml").status_code == 404


def _upload(client, text: str, name: str = "protocol.yaml"):
    import io

    url = "/admin/upload/"
    token = page_token(client.get(url).get_data(as_text=True))
    data = {"csrf_token": token, "file": (io.BytesIO(text.encode("utf-8")), name)}
    return client.post(url, data=data, content_type="multipart/form-data")


def _seed_as(code: str, **changes: Any) -> str:
    data = rules.seed_protocol().to_dict()
    data.update(protocol=code, **changes)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def test_an_uploaded_file_becomes_a_new_protocol_or_a_new_draft(app, writer):
    response = _upload(writer, _seed_as("NEW-1"))
    assert response.status_code == 302
    assert "Uploaded as a new protocol: NEW-1 version 1" in writer.get(response.headers["Location"]).get_data(
        as_text=True
    )
    response = _upload(writer, rules.dump_protocol(rules.seed_protocol()))
    assert "Uploaded as a new draft: NCT07193667 version 2" in writer.get(response.headers["Location"]).get_data(
        as_text=True
    )
    with app.app_context():
        assert ProtocolVersion.query.filter_by(status="draft").count() == 2


def test_an_uploaded_file_with_problems_is_refused_whole_with_each_problems_path(app, writer):
    data = rules.seed_protocol().to_dict()
    data["protocol"] = "BAD-1"
    data["criteria"][2]["rule"] = "ancc >= 1 x10^9/L"
    data["criteria"][4]["kind"] = "sometimes"
    data["test_cases"][0]["subject"]["wbc"] = "lots"
    response = _upload(writer, yaml.safe_dump(data))
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'data-upload="refused"' in page
    assert "criteria[4] (" in page and "kind `sometimes`" in page
    with app.app_context():
        assert Protocol.query.filter_by(code="BAD-1").count() == 0
    data["criteria"][4]["kind"] = "inclusion"
    page = _upload(writer, yaml.safe_dump(data)).get_data(as_text=True)
    assert f"criteria[2] ({data['criteria'][2]['code']}): unknown variable `ancc`" in page
    data["criteria"][2]["rule"] = "anc >= 1 x10^9/L"
    page = _upload(writer, yaml.safe_dump(data)).get_data(as_text=True)
    assert "test_cases[0] (" in page and "wbc: got &#39;lots&#39;" in page
    for text, message in (("", "the file is empty"), ("a: [", "not valid YAML"), ("- 1", "a mapping")):
        assert message in _upload(writer, text).get_data(as_text=True)
    with app.app_context():
        assert Protocol.query.count() == 1 and ProtocolVersion.query.count() == 1


def test_uploading_is_for_writers(signed_in):
    assert signed_in("reviewer").get("/admin/upload/").status_code == 403
    assert signed_in("screener").get("/admin/workbench/1").status_code == 403


class _Form(HTMLParser):
    """A page's form fields as the browser would submit them untouched (inputs, selected options, text areas)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "checkbox", "file"):
            self.fields.setdefault(a["name"], []).append(a.get("value") or "")
        elif tag == "select":
            self._select = a.get("name")
            self.fields.setdefault(self._select, [])
        elif tag == "option" and self._select and "selected" in a:
            self.fields[self._select].append(a.get("value") or "")
        elif tag == "textarea":
            self._textarea = a.get("name")
            self.fields[self._textarea] = [""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea][0] += data.removeprefix("\n") if not self.fields[self._textarea][0] else data


def test_every_seed_test_case_survives_its_edit_form_unchanged(app, client, writer):
    """Each shipped case opened in the form and saved as it stands keeps its subject and expectations."""
    client.post("/api/v1/protocols/NCT07193667/versions", json={"from": 1})
    with app.app_context():
        draft = ProtocolVersion.query.filter_by(number=2).one()
        before = {t.id: t.to_definition() for t in draft.test_cases}
        dictionary = rules.compile_protocol(draft.to_definition()).dictionary
    for case_id, original in before.items():
        page = writer.get(f"/admin/testcases/edit/?id={case_id}").get_data(as_text=True)
        form = _Form()
        form.feed(page)
        response = writer.post(f"/admin/testcases/edit/?id={case_id}", data=form.fields)
        assert response.status_code == 302, (original.name, _errors(response.get_data(as_text=True)))
        with app.app_context():
            saved = db.session.get(TestCase, case_id).to_definition()
        assert (saved.name, saved.expect, saved.outcomes, saved.refused) == (
            original.name,
            original.expect,
            dict(original.outcomes),
            original.refused,
        )
        assert saved.missing == original.missing or (original.missing == () and saved.missing is None)
        if original.expect != "refused":
            assert dictionary.normalize(saved.subject).values == dictionary.normalize(original.subject).values
    with app.app_context():
        draft_id = ProtocolVersion.query.filter_by(number=2).one().id
    assert f"All {len(before)} test case(s) pass" in writer.get(f"/admin/workbench/{draft_id}/tests").get_data(
        as_text=True
    )


def test_cohorts_and_value_sets_are_added_to_a_new_draft_through_their_forms(app, writer, draft):
    assert _add(writer, "cohorts", draft, {"code": "YOUNG", "label": "Younger adults"}).status_code == 302
    valueset = {"name": "sglt2", "label": "SGLT2 inhibitors", "system": "ATC", "codes": "A10BK*", "help": ""}
    assert _add(writer, "valuesets", draft, valueset).status_code == 302
    criterion = {"code": "IN-03", "kind": "inclusion", "cohorts": "YOUNG", "text": "Under 40", "rule": "age < 40 years"}
    assert _add(writer, "criteria", draft, criterion).status_code == 302
    with app.app_context():
        definition = _version(app, draft).to_definition()
    assert [c.code for c in definition.cohorts] == ["YOUNG"]
    assert (definition.value_sets[0].name, definition.value_sets[0].codes) == ("sglt2", ("A10BK*",))
    assert definition.criteria[-1].cohorts == ("YOUNG",)
    page = writer.get(f"/admin/workbench/{draft}").get_data(as_text=True)
    assert "Younger adults" in page and "A10BK*" in page and "YOUNG only" in page
    form = writer.get(f"/admin/testcases/new/?version_id={draft}").get_data(as_text=True)
    assert '<select class="form-control" id="cohort" name="cohort" required><option value="YOUNG">' in form
    response = _post(
        writer, f"/admin/testcases/new/?version_id={draft}", {**CASE, "cohort": "OLD", "expect": "eligible"}
    )
    assert any(e.startswith("Cohort: Not a valid choice") for e in _errors(response.get_data(as_text=True)))
    response = _post(
        writer, f"/admin/testcases/new/?version_id={draft}", {**CASE, "cohort": "YOUNG", "expect": "eligible"}
    )
    assert response.status_code == 302
    with app.app_context():
        assert _version(app, draft).test_cases[0].subject["cohort"] == "YOUNG"


def test_a_form_opened_from_the_workbench_starts_on_its_version_and_returns_to_it(writer, draft):
    page = writer.get(f"/admin/criteria/new/?version_id={draft}&url=/admin/workbench/{draft}").get_data(as_text=True)
    assert re.search(rf'<option selected value="{draft}">|<option value="{draft}" selected>', page)
    criterion = {"code": "IN-04", "kind": "inclusion", "text": "t", "rule": "age > 1 years"}
    url = f"/admin/criteria/new/?version_id={draft}&url=/admin/workbench/{draft}"
    response = _post(writer, url, {"version": str(draft), **criterion})
    assert response.headers["Location"] == f"/admin/workbench/{draft}"
