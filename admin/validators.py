"""Form validators that check what a protocol writer types against the version's data dictionary."""

from __future__ import annotations

from markupsafe import Markup, escape
from wtforms import ValidationError

from rules import coding, lists
from rules.checker import check_rule
from rules.dictionary import DataDictionary
from rules.errors import ProtocolError, RuleErrors
from rules.protocol import VARIABLE_TYPES
from rules.units import UnitError, parse
from service.infra.models import DRAFT, ProtocolVersion


def version_of(form) -> ProtocolVersion | None:
    """The version the edited row belongs to: the object being edited, or the version chosen on create."""
    obj = getattr(form, "_obj", None)
    if obj is not None and getattr(obj, "version", None) is not None:
        return obj.version
    field = getattr(form, "version", None)
    return field.data if field is not None else None


def draft_only(form, field) -> None:
    version = version_of(form)
    if version is not None and version.status != DRAFT:
        raise ValidationError(
            f"version {version.number} is {version.status} and cannot change:"
            " start an amendment (Versions → Start amendment)"
        )


def valid_rule(form, field) -> None:
    """Parse and check the rule against the version's dictionary; show each problem with its position."""
    kind = getattr(getattr(form, "kind", None), "data", None) or "inclusion"
    _check(form, field, kind)


def valid_condition(form, field) -> None:
    """A named condition is a rule too, checked the same way; it has no kind, so no `unless`."""
    _check(form, field, None)


def _check(form, field, kind: str | None) -> None:
    version = version_of(form)
    if version is None or not field.data:
        return
    try:
        dictionary = DataDictionary(version.to_definition())
    except ProtocolError as error:
        raise ValidationError(f"the data dictionary has problems to fix first: {error}") from None
    try:
        check_rule(field.data, dictionary, kind=kind)
    except RuleErrors as errors:
        messages = []
        for problem in errors.errors:
            context = problem.context()
            message = f"{problem.describe()}"
            if context:
                message += f"\n{context}"
            messages.append(message)
        raise ValidationError(
            Markup("<pre class='rule-error'>{}</pre>").format(escape("\n\n".join(messages)))
        ) from None


def known_cohorts(form, field) -> None:
    version = version_of(form)
    if version is None:
        return
    known = {c.code for c in version.cohorts}
    unknown = [code for code in field.data or [] if code not in known]
    if unknown:
        raise ValidationError(
            f"unknown cohort {', '.join(unknown)}: use {', '.join(sorted(known))}, or leave empty for all"
        )


def known_unit(form, field) -> None:
    for label in [field.data] if isinstance(field.data, str) else (field.data or []):
        if label:
            try:
                parse(label)
            except UnitError as error:
                raise ValidationError(f"{error}; write it as a lab would, e.g. x10^9/L, µmol/L, mg/dL") from None


def variable_type(form, field) -> None:
    if field.data not in VARIABLE_TYPES:
        raise ValidationError(f"one of {', '.join(VARIABLE_TYPES)}")


def identifier(form, field) -> None:
    """A cohort code: an identifier, as in protocol files (it ends up in URLs and exports)."""
    from service.versions import CODE, CODE_EXPECTED

    if field.data and not CODE.match(field.data):
        raise ValidationError(f"{field.data[:80]!r} is not a code: {CODE_EXPECTED}")


def code_system(form, field) -> None:
    if lists.system_of(field.data) is None:
        raise ValidationError(f"one of {', '.join(lists.SYSTEMS)}")


def valid_coding(form, field) -> None:
    """Every line `system|code`, a system URI, and a code of that system's shape (LOINC 718-7, ATC L04*)."""
    problems = list(getattr(field, "invalid", []))
    for item in field.data or []:
        reason = coding.problem(coding.Coding(item["system"], item["code"]))
        if reason:
            problems.append(reason)
    if problems:
        raise ValidationError("; ".join(problems))


def value_set_codes(form, field) -> None:
    """Each code must be of the value set's system; a prefix ends in `*` (ATC `A10BK*`)."""
    system = lists.system_of(getattr(getattr(form, "system", None), "data", None))
    if not field.data:
        raise ValidationError("at least one code, e.g. A10BK* (a prefix) or A10BK01")
    if system is None:
        return  # the system field says what is wrong
    problems = [p for code in field.data if (p := lists.code_problem(system, code))]
    if problems:
        raise ValidationError("; ".join(problems))


PASSWORD_MIN = 12


def password_policy(form, field) -> None:
    """At least 12 characters and not the username; a new account cannot be saved without one."""
    password = field.data or ""
    if not password:
        if getattr(form, "_obj", None) is None:
            raise ValidationError(f"a new account needs a password of at least {PASSWORD_MIN} characters")
        return  # editing: an empty field keeps the current password
    if len(password) < PASSWORD_MIN:
        raise ValidationError(f"at least {PASSWORD_MIN} characters, not {len(password)}")
    username = (getattr(getattr(form, "username", None), "data", None) or "").strip().lower()
    if username and username in password.lower():
        raise ValidationError("must not contain the username")


def screener_site(form, field) -> None:
    """A screener screens for one site and sees its log only: the site cannot be empty."""
    role = getattr(getattr(form, "role", None), "data", None)
    if role == "screener" and not (field.data or "").strip():
        raise ValidationError("a screener needs a site: they screen for it and see its log only")
