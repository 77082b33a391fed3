"""Explanations: the sentence a screener reads and the structure a reviewer traces."""

from __future__ import annotations

import json


def _criterion(decision, code):
    return next(c for c in decision.criteria if c.code == code)


def test_failure_shows_converted_and_submitted_values(screen):
    result = _criterion(screen("SLE", {"anc": {"value": 800, "unit": "/µL"}}), "IN-03b")
    assert result.sentence == "ANC 0.8 x10^9/L (submitted 800 /µL) is below 1 x10^9/L"
    test = result.condition["items"][0]
    assert (test["actual"], test["threshold"], test["value"], test["decisive"]) == (0.8, 1.0, False, True)


def test_unknown_names_what_is_missing(screen):
    decision = screen("SLE", {"hbcab_positive": "yes"})
    result = _criterion(decision, "EX-08a")
    assert result.sentence == "not checked: HBV DNA, HBV DNA upper limit of normal missing"
    assert decision.decision == "incomplete"
    assert decision.missing == ["hbv_dna", "hbv_dna_uln"]


def test_derived_values_name_their_missing_inputs(screen):
    result = _criterion(screen("SLE", {"weight": None}), "IN-03g")
    assert result.missing == ["crcl_decline_disease_induced", "weight"]  # either could decide
    assert (
        result.condition["items"][0]["sentence"]
        == "Creatinine clearance (Cockcroft-Gault) not computed: Body weight missing"
    )


def test_not_applicable_says_which_cohort(screen):
    assert _criterion(screen("SLE"), "IN-ITP-2").sentence == "not applicable: ITP cohort only"


def test_exception_that_applies_is_said(screen):
    result = _criterion(screen("IIM", {"alt": {"value": 400, "unit": "U/L", "uln": 40}}), "IN-03d")
    assert result.outcome == "pass"
    assert result.sentence == (
        "ALT 400 U/L is above 3 x ULN (120 U/L; ULN 40 U/L), but the exception applies:"
        " ALT elevation caused by inflammatory myopathy: yes"
    )


def test_at_least_k_shows_the_branches_that_decided(screen):
    result = _criterion(screen("IIM", {"mmt8": 130, "phga": 3, "haq": 0.5}), "IN-IIM-3")
    branch = result.condition["items"][0]["items"][1]
    assert (branch["type"], branch["needed"], branch["met"]) == ("at_least", 2, 2)
    assert branch["sentence"].startswith("2 of 5 met (at least 2 needed, 3 unknown): Physician global activity")
    assert [item["decisive"] for item in branch["items"]] == [True, False, False, True, False]


def test_window_sentence_gives_both_dates(screen):
    result = _criterion(screen("SLE", {"csf_received": "yes", "last_csf_date": "2026-10-25"}), "IN-03b")
    assert result.outcome == "fail"
    assert "Last colony-stimulating factor dose 2026-10-25 is within 2 weeks before screening (2026-11-02)" in (
        result.sentence
    )


def test_implication_that_does_not_apply(screen):
    result = _criterion(screen("SLE", {"sex": "male", "partner_childbearing_potential": "no"}), "IN-04c")
    assert result.sentence.startswith("does not apply: Sex is male, not female")


def test_decision_carries_version_hash_and_fired_rules(screen, compiled):
    decision = screen("SLE")
    assert decision.content_hash == compiled.content_hash
    assert (decision.protocol, decision.version, decision.cohort) == ("NCT07193667", "1", "SLE")
    assert "advance:0" in decision.rules_fired
    assert "derive:crcl" in decision.rules_fired
    assert _criterion(decision, "IN-01").rules_fired == ["IN-01:pass"]
    assert decision.derived["crcl"]["value"] == 88.5416666666
    json.dumps(decision.to_dict())  # the API sends it as is
