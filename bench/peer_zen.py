"""Peer probe: NCT07193667 in GoRules ZEN (zen-engine, Rust core) against Eligo, in one process.

    # from the project's root, with the benchmark extra installed (pip install -e ".[bench]"):
    .venv/bin/python bench/peer_zen.py --n 3000 --runs 2
    (--write-jdm rewrites bench/zen_NCT07193667.json from criteria() below)

Adapted from the peer probe in ../shared/peers/: the seed's readings of IN-01 (age in completed
years) and EX-12 (women only) changed, so the encoding below changed with them.

The JDM (zen_NCT07193667.json, beside this file) is the protocol encoded by hand from the YAML
rules, not generated from Eligo's IR: `criteria()` below is its source. One expression node reads
Eligo's normalised values (canonical units, dates as day ordinals) and computes, inside ZEN:
the derived values (CrCl by Cockcroft-Gault, days since the last immunosuppressant, five
half-lives), the date windows (days by ordinal arithmetic, months/years by ZEN's d().sub), the
ULN multiples, every criterion's Kleene truth, its outcome, and the decision.

Kleene logic: a truth is a number, 1 true, 0.5 unknown, 0 false; and = min, or = max,
not = 1 - x; at least k of n = (min(1, floor(#true / k)) + min(1, floor(#(true or unknown) / k))) / 2.
A test on a missing value is 0.5 (ZEN raises on `null >= 3`, so every test is guarded).

Agreement: every decision and criterion outcome against `rules.outcomes` on the 3,000 subjects of
bench/cohort.py, then on --fuzz subjects (inputs missing, on thresholds, ULN multiples and window
edges). Timing, per subject, every way in turn on each subject (as bench/decide.py), then each way
alone back to back; ZEN's input is Eligo's normalised values, normalised outside ZEN's timing.
Measured 2026-11-28 (2 cores): 3,000/3,000 and 20,000/20,000 agree; ZEN 165-345 µs a subject,
Eligo's engine outcomes 1.9-2.1 ms, engine + explanation 3.5-3.7 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
JDM_PATH = HERE / "zen_NCT07193667.json"
CREATININE_UMOL_TO_MGDL = 0.011312  # µmol/L -> mg/dL for creatinine (113.12 g/mol)
EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal()


# -- the encoding ---------------------------------------------------------------------------------


def num(field: str, op: str, value: str | float) -> str:
    """A comparison; unknown when the field (or the field compared with) is missing."""
    return f"({field} == null ? 0.5 : ({field} {op} {value} ? 1 : 0))"


def uln(field: str, op: str, factor: float) -> str:
    """`field op factor x ULN`, the subject's own upper limit in `<field>_uln`."""
    limit = f"{field}_uln" if factor == 1 else f"{field}_uln * {factor:g}"
    return f"({field} == null or {field}_uln == null ? 0.5 : ({field} {op} {limit} ? 1 : 0))"


def yes(field: str) -> str:
    return f"({field} == null ? 0.5 : ({field} ? 1 : 0))"


def code(field: str, value: str) -> str:
    return f"({field} == null ? 0.5 : ({field} == '{value}' ? 1 : 0))"


def all_(*items: str) -> str:
    return f"min([{', '.join(items)}])"


def any_(*items: str) -> str:
    return f"max([{', '.join(items)}])"


def not_(item: str) -> str:
    return f"(1 - {item})"


def implies(condition: str, requirement: str) -> str:
    return any_(not_(condition), requirement)


def within(field: str, span: str) -> str:
    """`field within <span> before screening`: from the window's first day to the screening date."""
    if span.endswith("d"):
        start = f"screening_date - {int(span[:-1])}"
    else:  # calendar months; ZEN's sub('5y') gives "Invalid date" from 29 February, 60M clamps
        start = (
            f"(d((screening_date - {EPOCH_ORDINAL}) * 86400000).sub('{span}').timestamp() / 86400000 + {EPOCH_ORDINAL})"
        )
    return f"({field} == null ? 0.5 : ({field} >= {start} and {field} <= screening_date ? 1 : 0))"


def at_least(k: int, array_ref: str) -> str:
    true = f"count({array_ref}, # == 1)"
    possible = f"count({array_ref}, # > 0)"
    return f"((min([1, floor({true} / {k})]) + min([1, floor({possible} / {k})])) / 2)"


RELAPSE_REFRACTORY = any_(
    all_(yes("conventional_treatment_failed"), num("conventional_treatment_duration", ">", 6)),
    yes("relapse_after_remission"),
)
FEMALE_CBP = all_(code("sex", "female"), yes("childbearing_potential"))


def criteria() -> list[tuple[str, str, str | None, str]]:
    """(code, kind, cohort or None, truth expression), read from NCT07193667.yaml's rules."""
    return [
        ("IN-01", "inclusion", None, all_(num("age", ">=", 18), num("age", "<", 66))),  # completed years
        ("IN-02", "inclusion", None, yes("cd19_positive")),
        ("IN-03a", "inclusion", None, num("wbc", ">=", 3)),
        (
            "IN-03b",
            "inclusion",
            None,
            all_(num("anc", ">=", 1), not_(all_(yes("csf_received"), within("last_csf_date", "14d")))),
        ),
        ("IN-03c", "inclusion", None, num("hgb", ">=", 60)),
        ("IN-03d", "inclusion", None, any_(uln("alt", "<=", 3), yes("alt_elevation_myopathy"))),
        ("IN-03e", "inclusion", None, any_(uln("ast", "<=", 3), yes("ast_elevation_myopathy"))),
        (
            "IN-03f",
            "inclusion",
            None,
            any_(uln("tbil", "<=", 1.5), all_(yes("gilbert_syndrome"), uln("tbil", "<=", 3))),
        ),
        ("IN-03g", "inclusion", None, any_(num("$.derived.crcl", ">=", 30), yes("crcl_decline_disease_induced"))),
        ("IN-03h", "inclusion", None, uln("inr", "<=", 1.5)),
        ("IN-03i", "inclusion", None, uln("pt", "<=", 1.5)),
        ("IN-03j", "inclusion", None, yes("hemodynamically_stable")),
        (
            "IN-04a",
            "inclusion",
            None,
            implies(
                any_(FEMALE_CBP, all_(code("sex", "male"), yes("partner_childbearing_potential"))),
                yes("contraception_agreed"),
            ),
        ),
        (
            "IN-04b",
            "inclusion",
            None,
            implies(FEMALE_CBP, all_(yes("serum_hcg_negative"), within("serum_hcg_date", "7d"))),
        ),
        ("IN-04c", "inclusion", None, implies(FEMALE_CBP, not_(yes("breastfeeding")))),
        ("IN-05", "inclusion", None, all_(yes("informed_consent_signed"), yes("follow_up_compliance"))),
        # SLE
        ("IN-SLE-1", "inclusion", "SLE", yes("sle_classification_2019")),
        (
            "IN-SLE-2",
            "inclusion",
            "SLE",
            any_(
                all_(num("sledai_2k", ">=", 6), any_(num("bilag_a_count", ">=", 1), num("bilag_b_count", ">=", 2))),
                num("sledai_2k", ">=", 8),
            ),
        ),
        ("IN-SLE-3", "inclusion", "SLE", RELAPSE_REFRACTORY),
        # SSc
        ("IN-SSC-1", "inclusion", "SSc", yes("ssc_classification_2013_diffuse")),
        ("IN-SSC-2", "inclusion", "SSc", yes("ssc_antibody_positive")),
        ("IN-SSC-3", "inclusion", "SSc", any_(yes("diffuse_cutaneous_sclerosis"), yes("active_ild"))),
        (
            "IN-SSC-4/5",
            "inclusion",
            "SSc",
            any_(
                RELAPSE_REFRACTORY,
                any_(
                    num("mrss_increase", ">", 25),
                    num("fvc_decline", ">=", 10),
                    all_(num("fvc_decline", ">", 5), num("dlco_decline", ">=", 15)),
                ),
            ),
        ),
        # IIM
        ("IN-IIM-1", "inclusion", "IIM", yes("iim_classification_2017")),
        ("IN-IIM-2", "inclusion", "IIM", yes("myositis_antibody_positive")),
        (
            "IN-IIM-3",
            "inclusion",
            "IIM",
            any_(
                all_(num("mmt8", "<", 142), at_least(2, "$.core.iim3")),
                all_(num("mmt8", ">=", 142), yes("active_ild")),
            ),
        ),
        (
            "IN-IIM-4/5",
            "inclusion",
            "IIM",
            any_(RELAPSE_REFRACTORY, any_(yes("myositis_exacerbation"), yes("rapidly_progressive_ild"))),
        ),
        # ITP
        ("IN-ITP-1", "inclusion", "ITP", yes("itp_classification_2019")),
        ("IN-ITP-2", "inclusion", "ITP", yes("megakaryocytes_consistent")),
        ("IN-ITP-3", "inclusion", "ITP", yes("secondary_thrombocytopenia_excluded")),
        (
            "IN-ITP-4/5",
            "inclusion",
            "ITP",
            any_(
                all_(yes("first_line_therapy_completed"), any_(num("platelets", "<=", 30), yes("overt_bleeding"))),
                any_(
                    yes("platelet_sustained_decline"),
                    yes("bleeding_progressive_worsening"),
                    yes("response_progressively_worse"),
                ),
            ),
        ),
        # exclusions: the truth is that of the excluded condition
        ("EX-01", "exclusion", None, yes("severe_drug_allergy")),
        (
            "EX-02",
            "exclusion",
            None,
            all_(
                yes("infection_present_or_suspected"),
                any_(yes("infection_uncontrolled"), yes("infection_requires_treatment")),
            ),
        ),
        ("EX-03", "exclusion", None, yes("cns_disorder")),
        ("EX-04", "exclusion", None, yes("cardiac_function_intolerable")),
        ("EX-05", "exclusion", None, yes("congenital_ig_deficiency")),
        ("EX-06", "exclusion", None, all_(yes("malignancy_history"), within("last_malignancy_date", "60M"))),
        ("EX-07", "exclusion", None, yes("end_stage_renal_failure")),
        (
            "EX-08a",
            "exclusion",
            None,
            any_(yes("hbsag_positive"), all_(yes("hbcab_positive"), uln("hbv_dna", ">", 1))),
        ),
        ("EX-08b", "exclusion", None, all_(yes("hcv_antibody_positive"), yes("hcv_rna_positive"))),
        ("EX-08c", "exclusion", None, yes("hiv_antibody_positive")),
        ("EX-08d", "exclusion", None, yes("syphilis_positive")),
        ("EX-09", "exclusion", None, any_(yes("mental_illness"), yes("severe_cognitive_impairment"))),
        ("EX-10", "exclusion", None, all_(yes("other_trial_participation"), within("last_other_trial_date", "3M"))),
        (
            "EX-11",
            "exclusion",
            None,
            all_(
                yes("immunosuppressant_received"),
                "($.derived.days_since_immunosuppressant == null or $.derived.immunosuppressant_washout == null"
                " ? 0.5 : ($.derived.days_since_immunosuppressant < $.derived.immunosuppressant_washout ? 1 : 0))",
            ),
        ),
        ("EX-12", "exclusion", None, all_(code("sex", "female"), any_(yes("pregnant"), yes("pregnancy_planned")))),
        ("EX-13", "exclusion", None, yes("investigator_excludes")),
    ]


DERIVED = [
    # Cockcroft-Gault: creatinine arrives in µmol/L (canonical) and the formula wants mg/dL
    (
        "derived.crcl",
        "age == null or weight == null or creatinine == null or sex == null ? null"
        f" : (140 - age) * weight / (72 * (creatinine * {CREATININE_UMOL_TO_MGDL})) * (sex == 'female' ? 0.85 : 1)",
    ),
    (
        "derived.days_since_immunosuppressant",
        "last_immunosuppressant_date == null ? null : screening_date - last_immunosuppressant_date",
    ),
    (
        "derived.immunosuppressant_washout",
        "immunosuppressant_half_life == null ? null : immunosuppressant_half_life * 5",
    ),
    # IN-IIM-3's five core measures, for at least 2 of them
    (
        "core.iim3",
        "cohort != 'IIM' ? null : ["
        + ", ".join(
            [
                num("phga", ">=", 2),
                num("ptga", ">=", 2),
                num("extramuscular_activity", ">=", 2),
                num("haq", ">=", 0.25),
                uln("muscle_enzyme", ">=", 1.5),
            ]
        )
        + "]",
    ),
]


def outcome(kind: str, cohort: str | None, truth: str) -> str:
    """The outcome; `map([truth], ...)[0]` binds the truth once (ZEN has no let, and `$.key` costs more)."""
    holds, breaks = ("pass", "fail") if kind == "inclusion" else ("fail", "pass")
    decided = f"map([{truth}], # == 1 ? '{holds}' : (# == 0 ? '{breaks}' : 'unknown'))[0]"
    return decided if cohort is None else f"cohort != '{cohort}' ? 'not_applicable' : {decided}"


def copy_code(code: str, copy: int) -> str:
    """A criterion's code in copy `copy` of the protocol (the first copy keeps the seed's codes)."""
    return code if copy == 0 else f"{code}-c{copy + 1}"  # no dot: ZEN reads a dotted key as a path


def seed_with_copies(copies: int = 1):
    """The seed protocol with its criteria repeated `copies` times under new codes: a protocol of
    47 x copies criteria with the seed's shapes, variables and subjects, to see speed as protocols grow."""
    import yaml

    import rules
    from rules.protocol import from_dict

    if copies == 1:
        return rules.seed_protocol()
    data = yaml.safe_load(rules.dump_protocol(rules.seed_protocol()))
    data["criteria"] = [
        {**criterion, "code": copy_code(criterion["code"], copy)}
        for copy in range(copies)
        for criterion in data["criteria"]
    ]
    data["test_cases"] = []
    return from_dict(data)


def build_jdm(copies: int = 1) -> dict:
    expressions: list[tuple[str, str]] = list(DERIVED)
    for copy in range(copies):
        for criterion, kind, cohort, truth in criteria():
            expressions.append((f"outcomes.{copy_code(criterion, copy)}", outcome(kind, cohort, truth)))
    expressions.append(
        (
            "decision",
            "contains(values($.outcomes), 'fail') ? 'not_eligible'"
            " : (contains(values($.outcomes), 'unknown') ? 'incomplete' : 'eligible')",
        )
    )
    position = {"x": 0, "y": 0}
    return {
        "contentType": "application/vnd.gorules.decision",
        "nodes": [
            {"id": "request", "type": "inputNode", "name": "Request", "position": position},
            {
                "id": "criteria",
                "type": "expressionNode",
                "name": "NCT07193667 criteria (Kleene truth: 1 true, 0.5 unknown, 0 false)",
                "position": position,
                "content": {
                    "expressions": [
                        {"id": f"e{i}", "key": key, "value": value} for i, (key, value) in enumerate(expressions)
                    ]
                },
            },
            {"id": "response", "type": "outputNode", "name": "Response", "position": position},
        ],
        "edges": [
            {"id": "e-in", "sourceId": "request", "targetId": "criteria", "type": "edge"},
            {"id": "e-out", "sourceId": "criteria", "targetId": "response", "type": "edge"},
        ],
    }


# -- harder subjects for the agreement check (not timed) -----------------------------------------

WINDOW_DAYS = {"last_csf_date": 14, "serum_hcg_date": 7}
WINDOW_MONTHS = {"last_malignancy_date": 60, "last_other_trial_date": 3}


def fuzz_subjects(compiled, n: int, seed: int = 11) -> list[dict]:
    """Subjects that reach every branch: any input missing, values on and around each threshold and
    ULN multiple, dates on window edges (month ends, 29 February) and after screening."""
    import datetime as dt
    import random

    from dateutil.relativedelta import relativedelta

    from bench.cohort import bases
    from rules.ir import Group

    thresholds: dict[str, set[float]] = {}
    factors: dict[str, set[float]] = {}
    scale = {c.field: c.amount for c in compiled.computed if c.kind == "scale"}

    def walk(node):
        if isinstance(node, Group):
            for item in node.items:
                walk(item)
        elif node.other is None and isinstance(node.value, float):
            thresholds.setdefault(node.field, set()).add(node.value)
        elif node.other is not None and (node.other.endswith("_uln") or node.other in scale):
            factors.setdefault(node.field, set()).add(scale.get(node.other, 1.0))

    for criterion in compiled.criteria:
        walk(criterion.ir)
    rng = random.Random(seed)
    templates = bases()
    variables = [
        v
        for v in compiled.dictionary.variables.values()
        if not v.is_derived and not v.companion_of and v.name not in ("cohort", "screening_date")
    ]
    first, last = dt.date(2024, 1, 1).toordinal(), dt.date(2027, 12, 31).toordinal()
    edges = [
        dt.date(2024, 2, 29),
        dt.date(2025, 3, 31),
        dt.date(2026, 5, 31),
        dt.date(2028, 2, 29),
        dt.date(2026, 12, 31),
    ]
    out = []
    for _ in range(n):
        subject = dict(templates[rng.choice(sorted(templates))])
        if rng.random() < 0.2:  # another cohort's data: its criteria mostly unknown or failed
            subject["cohort"] = rng.choice(sorted(templates))
        screening = rng.choice(edges) if rng.random() < 0.3 else dt.date.fromordinal(rng.randint(first, last))
        shift = screening - dt.date.fromisoformat(subject["screening_date"])
        for variable in variables:  # the template's dates move with the screening date
            if variable.type == "date" and subject.get(variable.name):
                subject[variable.name] = (dt.date.fromisoformat(subject[variable.name]) + shift).isoformat()
        subject["screening_date"] = screening.isoformat()
        intensity = rng.choice([0.02, 0.05, 0.15, 0.5, 1.0])  # how much of the subject is varied
        for variable in variables:
            name, d = variable.name, variable.definition
            roll = rng.random() / intensity
            if roll < 0.2:
                subject[name] = None
                continue
            if roll > 0.65:
                continue
            if variable.type == "boolean":
                subject[name] = rng.random() < 0.5
            elif variable.type == "code":
                subject[name] = rng.choice(d.codes)
            elif variable.type == "date":
                if name in WINDOW_DAYS:
                    offset = rng.choice([-1, 0, 1, WINDOW_DAYS[name] - 1, WINDOW_DAYS[name], WINDOW_DAYS[name] + 1])
                    day = screening - dt.timedelta(days=offset)
                elif name in WINDOW_MONTHS:
                    start = screening - relativedelta(months=WINDOW_MONTHS[name])
                    day = start + dt.timedelta(days=rng.choice([-1, 0, 1])) if rng.random() < 0.7 else screening
                else:
                    day = screening - dt.timedelta(days=rng.choice([-1, 0, 1, 30, 70, 71, 72, 400]))
                subject[name] = day.isoformat()
            else:
                low, high = d.minimum or 0.0, d.maximum or 1000.0
                if name in factors:
                    limit = round(rng.uniform(max(low, 1.0), min(100.0, high / 4)), rng.choice([0, 1, 2]))
                    factor = rng.choice(sorted(factors[name]))
                    value = rng.choice(
                        [limit * factor, limit * factor + 0.01, limit * factor - 0.01, rng.uniform(0, 4 * limit)]
                    )
                    value = round(min(max(value, low), high), 6)
                    subject[name] = {"value": value} if rng.random() < 0.1 else {"value": value, "uln": limit}
                    continue
                near = sorted(thresholds.get(name, {rng.uniform(low, min(high, 100.0))}))
                pick = rng.choice(near)
                value = rng.choice(
                    [pick, pick + 0.5, pick - 0.5, pick + 1, pick - 1, rng.uniform(low, min(high, 3 * pick + 10))]
                )
                if name == "immunosuppressant_half_life":
                    value = rng.choice([1, 2, 5, 10, 14, 20])
                subject[name] = min(max(round(value, 3), low), high)
        if (
            subject.get("last_immunosuppressant_date")
            and rng.random() < 0.5
            and subject.get("immunosuppressant_half_life")
        ):
            half_life = subject["immunosuppressant_half_life"]
            half_life = half_life["value"] if isinstance(half_life, dict) else half_life
            days = int(5 * half_life) + rng.choice([-1, 0, 1])
            subject["last_immunosuppressant_date"] = (screening - dt.timedelta(days=days)).isoformat()
        out.append(subject)
    return out


# -- the comparison -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--fuzz", type=int, default=20000, help="extra fuzzed subjects for agreement only")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time with this process's CPU time, not the wall clock: on a machine shared with other work, time"
        " spent waiting for a core is then not counted (the engine process's own work is then not counted either)",
    )
    parser.add_argument("--dump", help="write the fuzzed subjects that disagree to this JSON file")
    parser.add_argument("--write-jdm", action="store_true", help="write zen_NCT07193667.json and stop")
    parser.add_argument(
        "--copies", type=int, default=1, help="the seed's criteria this many times (3: 141 criteria), in both engines"
    )
    args = parser.parse_args()
    if args.write_jdm:
        JDM_PATH.write_text(json.dumps(build_jdm(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {JDM_PATH}")
        return

    sys.path.insert(0, str(Path.cwd()))  # run from the Eligo checkout
    import zen

    import rules
    from bench.cohort import subjects
    from bench.measure import percentile
    from rules import reference
    from rules.decision import combine
    from rules.engine import default_engine
    from rules.errors import SubjectInputErrors

    clock = time.process_time if args.cpu else time.perf_counter
    compiled = rules.compile_protocol(seed_with_copies(args.copies))
    cohort = subjects(args.n)
    text = JDM_PATH.read_text(encoding="utf-8") if args.copies == 1 else json.dumps(build_jdm(args.copies))
    # Loaded once. engine.evaluate(key) through a static loader is ZEN's fast path (~10 µs fixed cost);
    # ZenDecision.evaluate costs ~170 µs more a call even when precompiled (ZenDecisionContent), and
    # ~450 µs more when created from the JSON text (the expressions are then compiled on every call).
    engine = zen.ZenEngine({"loader": {"type": "static", "content": {"nct": json.loads(text)}}})
    decision = zen.ZenEngine().create_decision(zen.ZenDecisionContent(text))
    values = [compiled.dictionary.normalize(s).values for s in cohort]

    def zen_outcomes(canonical):
        result = engine.evaluate("nct", canonical)["result"]
        assert decision.evaluate(canonical)["result"] == result
        return result["decision"], result["outcomes"], result.get("derived", {})

    def reference_outcomes(subject):
        evaluation = reference.evaluate(compiled, compiled.dictionary.normalize(subject).values)
        return combine(list(evaluation.outcomes.values())), evaluation.outcomes

    # -- agreement: every decision and every criterion outcome, and the derived values
    def agreement(label, raw_subjects, show=10):
        mix: Counter[str] = Counter()
        cohorts: Counter[str] = Counter()
        outcome_mix: Counter[str] = Counter()
        disagreements, derived_off, rejected, engine_vs_reference = [], [], 0, 0
        for index, subject in enumerate(raw_subjects):
            try:
                canonical = compiled.dictionary.normalize(subject).values
            except SubjectInputErrors:
                rejected += 1
                continue
            eligo_decision, eligo = rules.outcomes(compiled, subject)
            reference_decision, by_reference = reference_outcomes(subject)
            engine_vs_reference += (eligo_decision, eligo) != (reference_decision, by_reference)
            zen_decision, ours, derived = zen_outcomes(canonical)
            mix[eligo_decision] += 1
            cohorts[subject["cohort"]] += 1
            outcome_mix.update(eligo.values())
            if zen_decision != eligo_decision or ours != eligo:
                diff = {c: (eligo.get(c), ours.get(c)) for c in set(eligo) | set(ours) if eligo.get(c) != ours.get(c)}
                disagreements.append((index, eligo_decision, zen_decision, diff))
            final = reference.evaluate(compiled, canonical).values
            for name in ("crcl", "days_since_immunosuppressant", "immunosuppressant_washout"):
                theirs, mine = final.get(name), derived.get(name)
                if (theirs is None) != (mine is None) or (
                    theirs is not None and abs(theirs - mine) > 1e-9 * max(1, abs(theirs))
                ):
                    derived_off.append((index, name, theirs, mine))
        checked = len(raw_subjects) - rejected
        agree = checked - len(disagreements)
        print(
            f"{label}: {checked:,} subjects {dict(cohorts)}"
            + (f", {rejected} rejected by normalisation" if rejected else "")
        )
        print(f"  Eligo decisions: {dict(mix)}; criterion outcomes: {dict(outcome_mix)}")
        print(
            f"  ZEN agrees with Eligo's engine on {agree}/{checked} subjects ({agree / checked:.2%}), decision and all"
            f" {len(compiled.criteria)} outcomes; derived values off: {len(derived_off)};"
            f" Eligo engine vs its reference: {engine_vs_reference} differ"
        )
        for index, eligo_decision, zen_decision, diff in disagreements[:show]:
            print(f"  DISAGREE subject {index}: eligo {eligo_decision}, zen {zen_decision}: {diff}")
        for item in derived_off[:show]:
            print(f"  DERIVED OFF subject {item[0]}: {item[1]} eligo {item[2]} zen {item[3]}")
        return disagreements

    print(f"clock: {'CPU time of this process' if args.cpu else 'wall clock'}")
    print(
        f"protocol: {len(compiled.criteria)} criteria ({args.copies} x the seed's), {len(compiled.ruleset)} engine"
        f" rules, {compiled.stages + 1} stages; engine rules fired a subject (mean over the cohort):"
        f" {statistics.fmean(len(default_engine().run(compiled, v)[1]) for v in values):.1f}"
    )
    agreement(f"peer ZEN ({JDM_PATH.name}) vs Eligo, bench/cohort.py subjects", cohort)
    if args.fuzz:
        hard = fuzz_subjects(compiled, args.fuzz)
        found = agreement("same, fuzzed subjects (every input missing or on a threshold/window edge)", hard)
        if found and args.dump:
            Path(args.dump).write_text(json.dumps([hard[i] for i, *_ in found], indent=1, default=str))

    # -- timing, every way on each subject in turn, the whole run twice
    ways = {
        "(a) ZEN engine.evaluate(key)": lambda i: engine.evaluate("nct", values[i]),
        "(a2) ZEN ZenDecision.evaluate": lambda i: decision.evaluate(values[i]),
        "(a+e) normalise + ZEN (a)": lambda i: engine.evaluate("nct", compiled.dictionary.normalize(cohort[i]).values),
        "(b) Eligo engine, outcomes only": lambda i: rules.outcomes(compiled, cohort[i]),
        "(c) Eligo engine + explanation": lambda i: rules.decide(compiled, cohort[i]),
        "(d) Eligo reference outcomes": lambda i: reference_outcomes(cohort[i]),
        "(e) Eligo normalisation alone": lambda i: compiled.dictionary.normalize(cohort[i]),
    }

    def report(title, timings):
        print(f"  {title}")
        print(f"    {'':34} {'median':>10} {'p99':>10} {'mean':>10}")
        for name, measured in timings.items():
            print(
                f"    {name:34} {statistics.median(measured) * 1e6:8.0f}µs {percentile(measured, 0.99) * 1e6:8.0f}µs"
                f" {statistics.fmean(measured) * 1e6:8.0f}µs"
            )
        median = {name: statistics.median(measured) for name, measured in timings.items()}
        p99 = {name: percentile(measured, 0.99) for name, measured in timings.items()}
        for left, right in [
            ("(b) Eligo engine, outcomes only", "(a) ZEN engine.evaluate(key)"),
            ("(c) Eligo engine + explanation", "(a) ZEN engine.evaluate(key)"),
            ("(b) Eligo engine, outcomes only", "(a2) ZEN ZenDecision.evaluate"),
            ("(b) Eligo engine, outcomes only", "(a+e) normalise + ZEN (a)"),
            ("(c) Eligo engine + explanation", "(a+e) normalise + ZEN (a)"),
            ("(d) Eligo reference outcomes", "(a+e) normalise + ZEN (a)"),
        ]:
            print(
                f"    {left[:3]} / {right.split(' ')[0]}: median {median[left] / median[right]:.2f}x,"
                f" p99 {p99[left] / p99[right]:.2f}x"
            )

    for run in range(1, args.runs + 1):
        for way in ways.values():
            way(0)
        # side by side: every way on each subject in turn (as bench/decide.py does)
        timings: dict[str, list[float]] = {name: [] for name in ways}
        for i in range(args.n):
            for name, way in ways.items():
                started = clock()
                way(i)
                timings[name].append(clock() - started)
        report(f"run {run}, interleaved (each subject through every way in turn), per subject over {args.n:,}", timings)
        # back to back: each way alone over all subjects, caches warm for it
        blocked: dict[str, list[float]] = {name: [] for name in ways}
        for name, way in ways.items():
            for i in range(args.n):
                started = clock()
                way(i)
                blocked[name].append(clock() - started)
        report(f"run {run}, back to back (each way alone over the {args.n:,})", blocked)


if __name__ == "__main__":
    main()
