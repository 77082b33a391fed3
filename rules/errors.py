"""The error tree of the rules package.

One root (`EligoError`) so callers can catch everything we raise on purpose, and
three branches for the three places things go wrong: the text of a rule
(`RuleError`), the data of a subject (`SubjectInputError`) and the engine
(`EngineError`). Errors carry structured fields, not just a message, so the API
can answer with the field, the value and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass


class EligoError(Exception):
    """Root of every error Eligo raises deliberately."""


@dataclass(frozen=True)
class Position:
    """A place in a rule's text: 1-based line and column, 0-based offsets."""

    line: int
    column: int
    start: int
    end: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"


class RuleError(EligoError):
    """A criterion's rule text cannot be used as written."""

    def __init__(
        self,
        message: str,
        position: Position | None = None,
        text: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.message = message
        self.position = position
        self.text = text
        self.suggestion = suggestion
        super().__init__(self.describe())

    def context(self) -> str:
        """The offending line with a caret under the error, as lark draws it."""
        if self.position is None or self.text is None:
            return ""
        lines = self.text.split("\n")  # lines as the parser counts them (see parser._syntax_error)
        line = lines[min(self.position.line, len(lines)) - 1]
        return f"{line}\n{' ' * (self.position.column - 1)}^"

    def describe(self) -> str:
        where = f" at {self.position}" if self.position else ""
        hint = f" (did you mean `{self.suggestion}`?)" if self.suggestion else ""
        return f"{self.message}{where}{hint}"

    def as_dict(self) -> dict[str, object]:
        return {
            "message": self.message,
            "line": self.position.line if self.position else None,
            "column": self.position.column if self.position else None,
            "suggestion": self.suggestion,
            "context": self.context() or None,
        }


class RuleSyntaxError(RuleError):
    """The text does not follow the criterion grammar."""


class RuleValidationError(RuleError):
    """The text parses but names an unknown variable, a unit that does not fit, or mixes types."""


class RuleErrors(EligoError):
    """Every problem found in one rule text, so a writer fixes them in one pass."""

    def __init__(self, errors: list[RuleError], criterion: str | None = None) -> None:
        self.errors = errors
        self.criterion = criterion
        prefix = f"{criterion}: " if criterion else ""
        super().__init__(prefix + "; ".join(e.describe() for e in errors))

    def problems(self) -> list[str]:
        """One line per problem, named by its criterion, with the rule line and a caret under the place."""
        prefix = f"{self.criterion}: " if self.criterion else ""
        return [f"{prefix}{e.describe()}" + (f"\n{e.context()}" if e.context() else "") for e in self.errors]


class ProtocolError(EligoError):
    """A protocol definition is inconsistent (duplicate codes, bad dictionary, bad formula)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or [message]
        super().__init__(message if not problems else f"{message}: " + "; ".join(problems))


class SubjectInputError(EligoError):
    """A subject's submitted data cannot be used; names the field, the value and what was expected."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}: got {value!r}, expected {expected}")

    def as_dict(self) -> dict[str, object]:
        value = self.value if isinstance(self.value, str | int | float | bool | None) else repr(self.value)
        return {"field": self.field, "value": value, "expected": self.expected}


class SubjectInputErrors(EligoError):
    """All the problems in one subject's data, reported together."""

    def __init__(self, errors: list[SubjectInputError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


class EngineError(EligoError):
    """The rule engine refused a ruleset or failed while deciding."""


class EngineLimitError(EngineError):
    """A protocol would exceed a hard limit of the C engine; said in words a protocol writer can act on."""


class EngineCrashed(EngineError):
    """The engine's process died while deciding (a C fault); it has been replaced."""


class EngineTimeout(EngineError):
    """The engine did not answer in time; its process was killed and replaced."""
