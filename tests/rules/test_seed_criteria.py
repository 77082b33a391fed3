"""Every criterion of NCT07193667 decided pass, fail and unknown by the engine.

Each row starts from a subject the protocol declares eligible for the cohort and
changes only what the row names (None removes a value), so the row shows exactly
which data moves the criterion.
"""

from __future__ import annotations

import datetime as dt

import pytest

# (criterion, cohort, expected outcome, changes)
CASES = [
    # General inclusion
    ("IN-01", "SLE", "pass", {"age": 18}),
    ("IN-01", "SLE", "pass", {"age": 65}),
    ("IN-01", "SLE", "fail", {"age": 17}),
    ("IN-01", "SLE", "pass", {"age": 65.4}),  # completed years: 65 until the day before the 66th birthday
    ("IN-01", "SLE", "fail", {"age": 66}),
    ("IN-01", "SLE", "fail", {"age": 17.9}),
    ("IN-01", "SLE", "unknown", {"age": None}),
    ("IN-02", "SLE", "pass", {}),
    ("IN-02", "SLE", "fail", {"cd19_positive": "no"}),
    ("IN-02", "SLE", "unknown", {"cd19_positive": None}),
    ("IN-03a", "SLE", "pass", {"wbc": {"value": 3000, "unit": "/µL"}}),
    ("IN-03a", "SLE", "fail", {"wbc": 2.9}),
    ("IN-03a", "SLE", "unknown", {"wbc": None}),
    ("IN-03b", "SLE", "pass", {"anc": {"value": 1000, "unit": "/µL"}}),
    ("IN-03b", "SLE", "fail", {"anc": {"value": 999, "unit": "/µL"}}),
    ("IN-03b", "SLE", "fail", {"csf_received": "yes", "last_csf_date": "2026-10-19"}),
    ("IN-03b", "SLE", "pass", {"csf_received": "yes", "last_csf_date": "2026-10-18"}),
    ("IN-03b", "SLE", "unknown", {"anc": None}),
    ("IN-03b", "SLE", "unknown", {"csf_received": "yes"}),
    ("IN-03c", "SLE", "pass", {"hgb": {"value": 6.0, "unit": "g/dL"}}),
    ("IN-03c", "SLE", "fail", {"hgb": {"value": 5.99, "unit": "g/dL"}}),
    ("IN-03c", "SLE", "unknown", {"hgb": None}),
    ("IN-03d", "SLE", "pass", {"alt": {"value": 120, "unit": "U/L", "uln": 40}}),
    ("IN-03d", "SLE", "fail", {"alt": {"value": 121, "unit": "U/L", "uln": 40}, "alt_elevation_myopathy": "no"}),
    ("IN-03d", "IIM", "pass", {"alt": {"value": 400, "unit": "U/L", "uln": 40}, "alt_elevation_myopathy": "yes"}),
    ("IN-03d", "SLE", "unknown", {"alt": 30}),  # no upper limit of normal given
    ("IN-03d", "SLE", "unknown", {"alt": {"value": 200, "unit": "U/L", "uln": 40}}),  # exception not stated
    ("IN-03e", "SLE", "pass", {}),
    # A nested uln is in the value's unit: 0.5 µkat/L = 30 U/L, so the limit is 1.5 µkat/L = 90 U/L.
    ("IN-03e", "SLE", "pass", {"ast": {"value": 1.5, "unit": "µkat/L", "uln": 0.5}}),
    ("IN-03e", "SLE", "fail", {"ast": {"value": 1.51, "unit": "µkat/L", "uln": 0.5}, "ast_elevation_myopathy": "no"}),
    ("IN-03e", "IIM", "pass", {"ast": {"value": 300, "unit": "U/L", "uln": 40}, "ast_elevation_myopathy": "yes"}),
    ("IN-03e", "SLE", "unknown", {"ast": None}),
    ("IN-03f", "SLE", "pass", {"tbil": {"value": 30, "unit": "µmol/L", "uln": 20}}),
    ("IN-03f", "SLE", "fail", {"tbil": {"value": 31, "unit": "µmol/L", "uln": 20}, "gilbert_syndrome": "no"}),
    ("IN-03f", "SLE", "pass", {"tbil": {"value": 60, "unit": "µmol/L", "uln": 20}, "gilbert_syndrome": "yes"}),
    ("IN-03f", "SLE", "fail", {"tbil": {"value": 61, "unit": "µmol/L", "uln": 20}, "gilbert_syndrome": "yes"}),
    ("IN-03f", "SLE", "unknown", {"tbil": {"value": 40, "unit": "µmol/L", "uln": 20}}),
    ("IN-03g", "SLE", "pass", {}),
    ("IN-03g", "SLE", "fail", {"creatinine": {"value": 3.2, "unit": "mg/dL"}, "crcl_decline_disease_induced": "no"}),
    ("IN-03g", "SLE", "unknown", {"creatinine": {"value": 3.2, "unit": "mg/dL"}}),  # exception not stated
    ("IN-03g", "SLE", "pass", {"creatinine": {"value": 3.2, "unit": "mg/dL"}, "crcl_decline_disease_induced": "yes"}),
    ("IN-03g", "SLE", "unknown", {"weight": None}),
    ("IN-03h", "SLE", "pass", {"inr": {"value": 1.8, "uln": 1.2}}),
    ("IN-03h", "SLE", "fail", {"inr": {"value": 1.81, "uln": 1.2}}),
    ("IN-03h", "SLE", "unknown", {"inr": None}),
    ("IN-03i", "SLE", "pass", {}),
    ("IN-03i", "SLE", "fail", {"pt": {"value": 21, "unit": "s", "uln": 13.5}}),
    ("IN-03i", "SLE", "unknown", {"pt": None}),
    ("IN-03j", "SLE", "pass", {}),
    ("IN-03j", "SLE", "fail", {"hemodynamically_stable": False}),
    ("IN-03j", "SLE", "unknown", {"hemodynamically_stable": None}),
    ("IN-04a", "SLE", "pass", {}),
    ("IN-04a", "SLE", "pass", {"sex": "male", "partner_childbearing_potential": "no", "contraception_agreed": None}),
    ("IN-04a", "SLE", "fail", {"contraception_agreed": "no"}),
    ("IN-04a", "SLE", "fail", {"sex": "male", "partner_childbearing_potential": "yes", "contraception_agreed": "no"}),
    ("IN-04a", "SLE", "unknown", {"contraception_agreed": None}),
    ("IN-04b", "SLE", "pass", {"serum_hcg_date": "2026-10-26"}),
    ("IN-04b", "SLE", "pass", {"childbearing_potential": "no", "serum_hcg_negative": None, "serum_hcg_date": None}),
    ("IN-04b", "SLE", "fail", {"serum_hcg_negative": "no"}),
    ("IN-04b", "SLE", "fail", {"serum_hcg_date": "2026-10-25"}),
    ("IN-04b", "SLE", "unknown", {"serum_hcg_date": None}),
    ("IN-04c", "SLE", "pass", {}),
    ("IN-04c", "SLE", "fail", {"breastfeeding": "yes"}),
    ("IN-04c", "SLE", "unknown", {"breastfeeding": None}),
    ("IN-05", "SLE", "pass", {}),
    ("IN-05", "SLE", "fail", {"follow_up_compliance": "no"}),
    ("IN-05", "SLE", "unknown", {"informed_consent_signed": None}),
    # SLE
    ("IN-SLE-1", "SLE", "pass", {}),
    ("IN-SLE-1", "SLE", "fail", {"sle_classification_2019": "no"}),
    ("IN-SLE-1", "SLE", "unknown", {"sle_classification_2019": None}),
    ("IN-SLE-2", "SLE", "pass", {"sledai_2k": 8, "bilag_a_count": 0, "bilag_b_count": 0}),
    ("IN-SLE-2", "SLE", "pass", {"sledai_2k": 6, "bilag_a_count": 1, "bilag_b_count": 0}),
    ("IN-SLE-2", "SLE", "pass", {"sledai_2k": 6, "bilag_a_count": 0, "bilag_b_count": 2}),
    ("IN-SLE-2", "SLE", "fail", {"sledai_2k": 7, "bilag_a_count": 0, "bilag_b_count": 1}),
    ("IN-SLE-2", "SLE", "fail", {"sledai_2k": 5, "bilag_a_count": 3, "bilag_b_count": 3}),
    ("IN-SLE-2", "SLE", "unknown", {"sledai_2k": 7, "bilag_a_count": None}),
    ("IN-SLE-3", "SLE", "pass", {"conventional_treatment_failed": "no", "relapse_after_remission": "yes"}),
    ("IN-SLE-3", "SLE", "fail", {"conventional_treatment_duration": {"value": 6, "unit": "months"}}),
    ("IN-SLE-3", "SLE", "pass", {"conventional_treatment_duration": {"value": 27, "unit": "weeks"}}),
    ("IN-SLE-3", "SLE", "unknown", {"conventional_treatment_duration": None}),
    # Systemic sclerosis
    ("IN-SSC-1", "SSc", "pass", {}),
    ("IN-SSC-1", "SSc", "fail", {"ssc_classification_2013_diffuse": "no"}),
    ("IN-SSC-1", "SSc", "unknown", {"ssc_classification_2013_diffuse": None}),
    ("IN-SSC-2", "SSc", "pass", {}),
    ("IN-SSC-2", "SSc", "fail", {"ssc_antibody_positive": "no"}),
    ("IN-SSC-2", "SSc", "unknown", {"ssc_antibody_positive": None}),
    ("IN-SSC-3", "SSc", "pass", {"diffuse_cutaneous_sclerosis": "no", "active_ild": "yes"}),
    ("IN-SSC-3", "SSc", "fail", {"diffuse_cutaneous_sclerosis": "no", "active_ild": "no"}),
    ("IN-SSC-3", "SSc", "unknown", {"diffuse_cutaneous_sclerosis": "no"}),
    ("IN-SSC-4/5", "SSc", "pass", {"mrss_increase": 0, "fvc_decline": 10}),
    ("IN-SSC-4/5", "SSc", "pass", {"mrss_increase": 0, "fvc_decline": 6, "dlco_decline": 15}),
    ("IN-SSC-4/5", "SSc", "pass", {"mrss_increase": 0, "relapse_after_remission": "yes"}),
    ("IN-SSC-4/5", "SSc", "fail", {"mrss_increase": 25, "fvc_decline": 6, "dlco_decline": 14}),
    ("IN-SSC-4/5", "SSc", "unknown", {"mrss_increase": None}),
    # Inflammatory myopathy
    ("IN-IIM-1", "IIM", "pass", {}),
    ("IN-IIM-1", "IIM", "fail", {"iim_classification_2017": "no"}),
    ("IN-IIM-1", "IIM", "unknown", {"iim_classification_2017": None}),
    ("IN-IIM-2", "IIM", "pass", {}),
    ("IN-IIM-2", "IIM", "fail", {"myositis_antibody_positive": "no"}),
    ("IN-IIM-2", "IIM", "unknown", {"myositis_antibody_positive": None}),
    ("IN-IIM-3", "IIM", "pass", {"mmt8": 130, "phga": 3, "haq": 0.25}),
    ("IN-IIM-3", "IIM", "pass", {"mmt8": 141, "ptga": 2, "muscle_enzyme": {"value": 300, "unit": "U/L", "uln": 200}}),
    (
        "IN-IIM-3",
        "IIM",
        "fail",
        {
            "mmt8": 130,
            "phga": 3,
            "ptga": 1,
            "extramuscular_activity": 1,
            "haq": 0.2,
            "muscle_enzyme": {"value": 250, "unit": "U/L", "uln": 200},
        },
    ),
    ("IN-IIM-3", "IIM", "fail", {"active_ild": "no"}),
    ("IN-IIM-3", "IIM", "unknown", {"mmt8": 130, "phga": 3}),
    ("IN-IIM-3", "IIM", "unknown", {"mmt8": None}),
    ("IN-IIM-4/5", "IIM", "pass", {"myositis_exacerbation": "no", "rapidly_progressive_ild": "yes"}),
    (
        "IN-IIM-4/5",
        "IIM",
        "fail",
        {"myositis_exacerbation": "no", "rapidly_progressive_ild": "no", "conventional_treatment_failed": "no"},
    ),
    ("IN-IIM-4/5", "IIM", "unknown", {"myositis_exacerbation": None, "conventional_treatment_failed": "no"}),
    # Immune thrombocytopenia
    ("IN-ITP-1", "ITP", "pass", {}),
    ("IN-ITP-1", "ITP", "fail", {"itp_classification_2019": "no"}),
    ("IN-ITP-1", "ITP", "unknown", {"itp_classification_2019": None}),
    ("IN-ITP-2", "ITP", "pass", {}),
    ("IN-ITP-2", "ITP", "fail", {"megakaryocytes_consistent": "no"}),
    ("IN-ITP-2", "ITP", "unknown", {"megakaryocytes_consistent": None}),
    ("IN-ITP-3", "ITP", "pass", {}),
    ("IN-ITP-3", "ITP", "fail", {"secondary_thrombocytopenia_excluded": "no"}),
    ("IN-ITP-3", "ITP", "unknown", {"secondary_thrombocytopenia_excluded": None}),
    ("IN-ITP-4/5", "ITP", "pass", {"platelets": 30}),
    ("IN-ITP-4/5", "ITP", "pass", {"platelets": 80, "overt_bleeding": "yes"}),
    ("IN-ITP-4/5", "ITP", "pass", {"first_line_therapy_completed": "no", "platelet_sustained_decline": "yes"}),
    (
        "IN-ITP-4/5",
        "ITP",
        "fail",
        {
            "platelets": 31,
            "platelet_sustained_decline": "no",
            "bleeding_progressive_worsening": "no",
            "response_progressively_worse": "no",
        },
    ),
    ("IN-ITP-4/5", "ITP", "unknown", {"platelets": None}),
    # Exclusions
    ("EX-01", "SLE", "pass", {}),
    ("EX-01", "SLE", "fail", {"severe_drug_allergy": "yes"}),
    ("EX-01", "SLE", "unknown", {"severe_drug_allergy": None}),
    (
        "EX-02",
        "SLE",
        "pass",
        {"infection_present_or_suspected": "yes", "infection_uncontrolled": "no", "infection_requires_treatment": "no"},
    ),
    ("EX-02", "SLE", "fail", {"infection_present_or_suspected": "yes", "infection_requires_treatment": "yes"}),
    ("EX-02", "SLE", "unknown", {"infection_present_or_suspected": "yes"}),
    ("EX-03", "SLE", "pass", {}),
    ("EX-03", "SLE", "fail", {"cns_disorder": "yes"}),
    ("EX-03", "SLE", "unknown", {"cns_disorder": None}),
    ("EX-04", "SLE", "pass", {}),
    ("EX-04", "SLE", "fail", {"cardiac_function_intolerable": "yes"}),
    ("EX-04", "SLE", "unknown", {"cardiac_function_intolerable": None}),
    ("EX-05", "SLE", "pass", {}),
    ("EX-05", "SLE", "fail", {"congenital_ig_deficiency": "yes"}),
    ("EX-05", "SLE", "unknown", {"congenital_ig_deficiency": None}),
    ("EX-06", "SLE", "pass", {"malignancy_history": "yes", "last_malignancy_date": "2021-11-01"}),
    ("EX-06", "SLE", "fail", {"malignancy_history": "yes", "last_malignancy_date": "2021-11-02"}),
    ("EX-06", "SLE", "unknown", {"malignancy_history": "yes"}),
    ("EX-07", "SLE", "pass", {}),
    ("EX-07", "SLE", "fail", {"end_stage_renal_failure": "yes"}),
    ("EX-07", "SLE", "unknown", {"end_stage_renal_failure": None}),
    ("EX-08a", "SLE", "pass", {"hbcab_positive": "yes", "hbv_dna": {"value": 20, "unit": "IU/mL", "uln": 20}}),
    ("EX-08a", "SLE", "fail", {"hbsag_positive": "yes"}),
    ("EX-08a", "SLE", "fail", {"hbcab_positive": "yes", "hbv_dna": {"value": 21, "unit": "IU/mL", "uln": 20}}),
    ("EX-08a", "SLE", "unknown", {"hbcab_positive": "yes"}),
    ("EX-08b", "SLE", "pass", {"hcv_antibody_positive": "yes", "hcv_rna_positive": "no"}),
    ("EX-08b", "SLE", "fail", {"hcv_antibody_positive": "yes", "hcv_rna_positive": "yes"}),
    ("EX-08b", "SLE", "unknown", {"hcv_antibody_positive": "yes"}),
    ("EX-08c", "SLE", "pass", {}),
    ("EX-08c", "SLE", "fail", {"hiv_antibody_positive": "yes"}),
    ("EX-08c", "SLE", "unknown", {"hiv_antibody_positive": None}),
    ("EX-08d", "SLE", "pass", {}),
    ("EX-08d", "SLE", "fail", {"syphilis_positive": "yes"}),
    ("EX-08d", "SLE", "unknown", {"syphilis_positive": None}),
    ("EX-09", "SLE", "pass", {}),
    ("EX-09", "SLE", "fail", {"severe_cognitive_impairment": "yes"}),
    ("EX-09", "SLE", "unknown", {"mental_illness": None}),
    ("EX-10", "SLE", "pass", {"other_trial_participation": "yes", "last_other_trial_date": "2026-08-01"}),
    ("EX-10", "SLE", "fail", {"other_trial_participation": "yes", "last_other_trial_date": "2026-08-02"}),
    ("EX-10", "SLE", "unknown", {"other_trial_participation": "yes"}),
    ("EX-11", "SLE", "pass", {"last_immunosuppressant_date": "2026-08-24"}),  # 70 days = 5 x 14
    ("EX-11", "SLE", "fail", {"last_immunosuppressant_date": "2026-08-25"}),  # 69 days
    ("EX-11", "SLE", "fail", {"immunosuppressant_half_life": {"value": 3, "unit": "weeks"}}),  # 105 > 93 days
    ("EX-11", "SLE", "pass", {"immunosuppressant_received": "no", "last_immunosuppressant_date": None}),
    ("EX-11", "SLE", "unknown", {"immunosuppressant_half_life": None}),
    ("EX-12", "SLE", "pass", {}),
    ("EX-12", "SLE", "fail", {"pregnancy_planned": "yes"}),
    ("EX-12", "SLE", "unknown", {"pregnant": None}),
    # EX-12 binds women only: a man is neither excluded nor asked.
    ("EX-12", "SLE", "pass", {"sex": "male", "pregnant": None, "pregnancy_planned": None}),
    ("EX-12", "SLE", "pass", {"sex": "male", "pregnant": "yes"}),
    ("EX-12", "SLE", "unknown", {"sex": None, "pregnant": "yes"}),
    ("EX-13", "SLE", "pass", {}),
    ("EX-13", "SLE", "fail", {"investigator_excludes": "yes"}),
    ("EX-13", "SLE", "unknown", {"investigator_excludes": None}),
]


@pytest.mark.parametrize(
    ("code", "cohort", "expected", "changes"), CASES, ids=lambda v: v if isinstance(v, str) else ""
)
def test_criterion_outcome(screen, code, cohort, expected, changes):
    decision = screen(cohort, changes)
    result = next(c for c in decision.criteria if c.code == code)
    assert result.outcome == expected, result.sentence
    assert f"{code}:{expected}" in " ".join(result.rules_fired)


def test_every_criterion_has_pass_fail_and_unknown_rows(seed):
    covered = {(code, outcome) for code, _, outcome, _ in CASES}
    missing = [(c.code, o) for c in seed.criteria for o in ("pass", "fail", "unknown") if (c.code, o) not in covered]
    assert missing == []


@pytest.mark.parametrize("cohort", ["SLE", "SSc", "IIM", "ITP"])
def test_criteria_of_other_cohorts_are_not_applicable(screen, seed, cohort):
    decision = screen(cohort)
    for criterion in seed.criteria:
        outcome = decision.outcome(criterion.code)
        if criterion.cohorts and cohort not in criterion.cohorts:
            assert outcome == "not_applicable"
        else:
            assert outcome == "pass"


def test_screening_date_is_the_reference_for_windows(screen):
    later = screen("SLE", {"screening_date": dt.date(2026, 11, 9), "serum_hcg_date": "2026-10-30"})
    assert later.outcome("IN-04b") == "fail"
