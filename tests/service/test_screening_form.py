"""The screening form follows the cohort, marks each refused value on its field, and a result says what to collect."""

from __future__ import annotations

import re

import pytest

from service.infra.models import Screening, db
from service.web.screening_pages import _list_text, decimal_point, list_entries, readable, superscripts, unit_key
from tests.service.test_pages import _token

FORM = "/screen/NCT07193667/SLE"


@pytest.fixture
def screener(app):
    """A screener signed in through the login page, CSRF on as in production."""
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    token = _token(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": "screener", "password": "pw-screener", "csrf_token": token})
    return client


def _post(client, path: str = FORM, **values):
    page = client.get(path).get_data(as_text=True)
    data = {"csrf_token": _token(page), "subject_id": "S-1", "site": "SITE-1", "screening_date": "2026-11-02"}
    data.update(values)
    return client.post(FORM, data=data)


def _input(html: str, name: str) -> str:
    return re.search(rf'<(?:input|select|textarea)[^>]*name="{name}"[^>]*>', html).group(0)


def test_the_form_asks_only_what_the_cohorts_criteria_read(screener):
    client = screener
    sle = client.get(FORM).get_data(as_text=True)
    assert 'name="sledai_2k"' in sle and 'name="anc"' in sle and 'name="weight"' in sle
    for other in ("platelets", "mmt8", "ssc_antibody_positive", "muscle_enzyme_uln"):
        assert f'name="{other}"' not in sle
    for section in ("Systemic sclerosis", "Inflammatory myopathy", "Immune thrombocytopenia"):
        assert f"<legend>{section}</legend>" not in sle
    assert 'name="platelets"' in client.get("/screen/NCT07193667/ITP").get_data(as_text=True)


def test_follow_ups_carry_the_answers_that_open_them(screener):
    html = screener.get(FORM).get_data(as_text=True)
    csf = re.search(r'<div class="field"[^>]*data-field="last_csf_date"[^>]*>', html).group(0)
    assert '"node": {"field": "csf_received", "op": "==", "value": true}, "waits": true' in csf
    alt = re.search(r'<div class="field"[^>]*data-field="alt"[^>]*>', html).group(0)
    assert """data-factors='{"iu/l": 1.0, "u/l": 1.0, "ukat/l": 60.0}'""" in alt  # keyed as eligo.js folds a unit
    anc = re.search(r'<div class="field"[^>]*data-field="anc"[^>]*>', html).group(0)
    assert "data-show-when" not in anc  # always asked
    assert '<script src="/static/eligo.js" defer></script>' in html


def test_a_refused_uln_is_marked_on_its_own_field(app, screener):
    html = _post(screener, alt="50", alt_uln="forty").get_data(as_text=True)
    uln = _input(html, "alt_uln")
    assert 'aria-invalid="true"' in uln and 'aria-describedby="alt-help alt_uln-error"' in uln
    assert re.search(r'id="alt_uln-error">&#39;forty&#39;: expected a number', html)
    assert "aria-invalid" not in _input(html, "alt")
    with app.app_context():
        assert db.session.query(Screening).count() == 0


def test_a_refused_value_names_its_message_and_keeps_its_help(screener):
    html = _post(screener, hgb="lots").get_data(as_text=True)
    assert 'aria-describedby="hgb-help hgb-error"' in _input(html, "hgb")


def test_a_decimal_comma_is_a_decimal_point(screener):
    client = screener
    response = _post(client, hgb="11,8 g/dL", alt="40", alt_uln="40,5")
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Haemoglobin 118 g/L (submitted 11.8 g/dL)" in html


def test_decimal_point_reads_commas_only_where_unambiguous():
    assert decimal_point("4,2") == "4.2"
    assert decimal_point(" -0,125 g/dL") == " -0.125 g/dL"
    assert decimal_point("1,000") == "1,000"  # a thousands separator, or 1.0? refused rather than guessed
    assert decimal_point("4.2") == "4.2"


def test_results_read_at_lab_precision_with_units_as_printed():
    sentence = "Total bilirubin 13.683 µmol/L (submitted 0.8 mg/dL) is at most 1.5 x ULN (30.787 µmol/L)"
    assert readable(sentence) == "Total bilirubin 13.7 µmol/L (submitted 0.8 mg/dL) is at most 1.5 x ULN (30.8 µmol/L)"
    assert readable("ANC 0.8 x10^9/L is below 1 x10^9/L") == "ANC 0.8 ×10⁹/L is below 1 ×10⁹/L"
    assert readable("INR 1.505 is above 1.5") == "INR 1.505 is above 1.5"  # rounding would read as equal
    assert superscripts("a. White blood cell count ≥3×109/L;") == "a. White blood cell count ≥3×10⁹/L;"
    assert superscripts("platelets > 30 × 10⁹ /L; 109 mg/L") == "platelets > 30 × 10⁹ /L; 109 mg/L"


def test_an_incomplete_result_says_what_to_collect_by_criterion_and_re_screen_prefills(screener):
    client = screener
    response = _post(
        client,
        anc="1800 /ul",  # the unit typed after the number, as a keyboard has it
        sex="male",
        csf_received="no",
        hbcab_positive="no",
        severe_drug_allergy="no",
    )
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Incomplete" in html
    collect = re.search(r'<section class="collect.*?</section>', html, re.S).group(0)
    assert "<strong>IN-03a</strong>: White blood cell count" in collect
    assert "wbc" not in collect  # labels, not variable names
    for moot in ("Last colony-stimulating factor dose", "HBV DNA", "Serum hCG", "Pregnant", "IN-03b", "EX-01"):
        assert moot not in collect, moot
    assert "then, if an answer calls for it: Last date with malignant tumour" in collect  # a follow-up
    # ALT and its ULN first; the myopathy question only once ALT is above 3 x ULN. In the form's order.
    assert re.search(
        r"<strong>IN-03d</strong>: ALT, ALT upper limit of normal;\s*<span[^>]*>then, if an answer calls for it:"
        r" ALT elevation caused by inflammatory myopathy</span>",
        collect,
    )
    assert "<strong>IN-03g</strong>: Age, Body weight, Serum creatinine, Decline in creatinine clearance" in collect
    assert "not excluded" in html  # EX-01 passed
    screening_id = int(response.headers["Location"].rsplit("/", 1)[1])
    form = client.get(f"{FORM}?from={screening_id}").get_data(as_text=True)
    assert 'value="S-1"' in _input(form, "subject_id")
    assert 'value="1800 /µL"' in _input(form, "anc")  # prefilled with the unit it was typed in
    assert re.search(r'<option selected value="no">no</option>', form.split('name="csf_received"')[1])


def test_a_subject_already_not_eligible_is_told_more_data_would_not_change_it(screener):
    client = screener
    response = _post(client, anc="800 /µL")
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Not eligible" in html and "more data would not change this decision" in html
    assert "To decide, collect" not in html


def test_a_list_is_prefilled_as_the_lines_it_was_typed_as():
    typed = "ATC: L04AA06, 2026-10-01, , 10 mg\nA10BK01, 2026-09-01, 2026-10-01"
    assert list_entries(_list_text(list_entries(typed))) == list_entries(typed)
    assert _list_text([]) == "none"


def test_re_screen_prefills_only_from_a_screening_of_the_screeners_site(app, screener):
    other = app.test_client()
    token = _token(other.get("/login").get_data(as_text=True))
    other.post("/login", data={"username": "screener2", "password": "pw-screener2", "csrf_token": token})
    response = _post(other, anc="800 /µL")
    screening_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert other.get(f"{FORM}?from={screening_id}").status_code == 200
    assert screener.get(f"{FORM}?from={screening_id}").status_code == 404


@pytest.mark.parametrize(
    ("typed", "accepted"),
    [("/ul", "/µL"), ("/μL", "/µL"), ("×10⁹/L", "x10^9/L"), ("X10^9/l", "x10^9/L"), ("10⁻³", "10^-3")],
)
def test_a_typed_unit_is_read_whatever_its_case_micro_sign_or_superscripts(typed, accepted):
    assert unit_key(typed) == unit_key(accepted)
    assert unit_key("mg/dL") != unit_key("g/dL")


def test_a_unit_typed_after_the_number_converts_and_a_limit_without_one_shares_it(screener):
    client = screener
    response = _post(client, alt="1,2 µkat/L", alt_uln="0.67")  # 72 U/L against a ULN of 40.2 U/L
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "submitted 1.2 µkat/L" in html
    screening_id = int(response.headers["Location"].rsplit("/", 1)[1])
    form = client.get(f"{FORM}?from={screening_id}").get_data(as_text=True)
    assert 'value="1.2 µkat/L"' in _input(form, "alt") and 'value="0.67 µkat/L"' in _input(form, "alt_uln")


def test_a_unit_the_variable_does_not_accept_is_marked_on_its_field(app, screener):
    html = _post(screener, anc="800 /mL").get_data(as_text=True)
    assert 'aria-invalid="true"' in _input(html, "anc")
    assert re.search(r'id="anc-error">&#39;/mL&#39;: expected one of x10\^9/L, 10\^9/L, /µL', html)
    with app.app_context():
        assert db.session.query(Screening).count() == 0
