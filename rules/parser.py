"""Parse criterion rules and derived-variable formulas with lark (LALR).

LALR gives exact positions and the set of expected tokens, which is what a
protocol writer needs to fix a rule; the parser is built once per process and
is stateless between calls, so it is safe to share.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from rules import ast
from rules.errors import Position, RuleSyntaxError

_OPERATORS = {"≥": ">=", "≤": "<=", "≠": "!=", "=": "==", "==": "=="}
_ARITHMETIC = {"x": "*", "×": "*", "−": "-", "÷": "/", "**": "^"}

_TOKEN_WORDS = {
    "NAME": "a variable name",
    "NUMBER": "a number",
    "UNIT": "a unit",
    "COMPARATOR": "a comparison (>=, <=, >, <, =, !=)",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "COMMA": "`,`",
    "TIMES": "`x`",
    "PLUS": "`+`",
    "MINUS": "`-`",
    "DIVIDE": "`/`",
    "POWER": "`^`",
    "ULN": "`ULN`",
    "LLN": "`LLN`",
    "ESCAPED_STRING": "a quoted code",
    "HALF_LIVES": "`half-lives`",
    "$END": "the end of the rule",
}


@cache
def _parser() -> Lark:
    grammar = files("rules").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        start=["criterion", "formula"],
        propagate_positions=True,
        maybe_placeholders=True,
    )


def _position(meta_or_token: object) -> Position:
    return Position(
        line=getattr(meta_or_token, "line", 1),
        column=getattr(meta_or_token, "column", 1),
        start=getattr(meta_or_token, "start_pos", 0),
        end=getattr(meta_or_token, "end_pos", 0),
    )


def _number(token: Token) -> float:
    value = float(token)
    return int(value) if value.is_integer() else value


@v_args(meta=True)
class _ToAst(Transformer):
    """Turn lark's tree into typed nodes; no semantics here, only shape."""

    def criterion(self, meta, children):
        return children[0]

    def formula(self, meta, children):
        return children[0]

    def number(self, meta, children):
        return ast.Number(_position(children[0]), _number(children[0]))

    def reference(self, meta, children):
        return self._ref(children[0])

    def converted(self, meta, children):
        name, unit = children
        return ast.Converted(_position(unit), self._ref(name), str(unit))

    def operation(self, meta, children):
        left, operator, right = children
        return ast.Operation(_position(operator), _ARITHMETIC.get(str(operator), str(operator)), (left, right))

    def sign(self, meta, children):
        operator, operand = children
        if operator.type == "PLUS":
            return operand
        return ast.Operation(_position(operator), "neg", (operand,))

    def call(self, meta, children):
        name, *arguments = children
        return ast.Call(_position(name), str(name), tuple(a for a in arguments if a is not None))

    def relation(self, meta, children):
        left, operator, right = children
        return ast.Relation(_position(operator), left, _OPERATORS.get(str(operator), str(operator)), right)

    def branch(self, meta, children):
        return ast.Branch(_position(meta), *children)

    def implies(self, meta, children):
        return ast.Implies(_position(meta), children[0], children[1])

    def unless(self, meta, children):
        return ast.Unless(_position(meta), children[0], children[1])

    def any_(self, meta, children):
        return ast.Any(_position(meta), tuple(children))

    def all_(self, meta, children):
        return ast.All(_position(meta), tuple(children))

    def not_(self, meta, children):
        return ast.Not(_position(meta), children[0])

    def truth(self, meta, children):
        return ast.Truth(_position(meta), ast.VariableRef(_position(children[0]), str(children[0])))

    def variable(self, meta, children):
        return ast.VariableRef(_position(children[0]), str(children[0]))

    def screening(self, meta, children):
        return ast.VariableRef(_position(meta), "screening_date")

    def quantity(self, meta, children):
        number, unit = children
        return ast.Quantity(_position(meta), _number(number), str(unit) if unit else None)

    def uln(self, meta, children):
        number = children[0]
        return ast.UlnMultiple(_position(meta), _number(number) if number is not None else 1)

    def lln(self, meta, children):
        number = children[0]
        return ast.LlnMultiple(_position(meta), _number(number) if number is not None else 1)

    def comparison(self, meta, children):
        name, operator, operand = children
        operator = _OPERATORS.get(str(operator), str(operator))
        return ast.Comparison(_position(meta), self._ref(name), operator, operand)

    def between(self, meta, children):
        name, low, high = children
        if low.unit is None and high.unit is not None:
            low = ast.Quantity(low.position, low.value, high.unit)
        return ast.Between(_position(meta), self._ref(name), low, high)

    def within(self, meta, children):
        name, negated, span, direction, reference = children
        return ast.Within(
            _position(meta), self._ref(name), span, reference, negated is not None, "within", str(direction).lower()
        )

    def _distance(self, meta, children, relation: str) -> ast.Within:
        name, span, direction, reference = children
        return ast.Within(_position(meta), self._ref(name), span, reference, False, relation, str(direction).lower())

    def at_least_before(self, meta, children):
        return self._distance(meta, children, "at_least")

    def more_than_before(self, meta, children):
        return self._distance(meta, children, "more_than")

    def less_than_before(self, meta, children):
        return self._distance(meta, children, "less_than")

    def list_window(self, meta, children):
        span, direction, reference = children
        return ast.ListWindow(_position(meta), span, reference, direction=str(direction).lower())

    def list_any(self, meta, children):
        name, value_set, window = children
        return ast.ListTest(_position(meta), "any", self._ref(name), self._ref(value_set), window)

    def list_no(self, meta, children):
        name, value_set, window = children
        return ast.ListTest(_position(meta), "no", self._ref(name), self._ref(value_set), window)

    def list_count(self, meta, children):
        name, value_set, window, operator, number = children
        operator = _OPERATORS.get(str(operator), str(operator))
        count = _number(number)
        return ast.ListTest(_position(meta), "count", self._ref(name), self._ref(value_set), window, operator, count)

    def list_washout(self, meta, children):
        name, value_set, number, _, direction, reference = children
        reference = reference or ast.VariableRef(_position(number), "screening_date")
        window = ast.ListWindow(_position(number), None, reference, _number(number), str(direction or "before").lower())
        return ast.ListTest(_position(meta), "washout", self._ref(name), self._ref(value_set), window)

    def is_(self, meta, children):
        name, negated, code = children
        return ast.Membership(_position(meta), self._ref(name), (code,), negated is not None)

    def in_(self, meta, children):
        name, negated, *codes = children
        return ast.Membership(_position(meta), self._ref(name), tuple(codes), negated is not None)

    def code(self, meta, children):
        token = children[0]
        return token[1:-1] if token.type == "ESCAPED_STRING" else str(token)

    def at_least(self, meta, children):
        count, *operands = children
        return ast.AtLeast(_position(meta), int(float(count)), tuple(operands))

    def any_of(self, meta, children):
        return ast.AtLeast(_position(meta), 1, tuple(children))

    def all_of(self, meta, children):
        return ast.All(_position(meta), tuple(children))

    @staticmethod
    def _ref(token: Token) -> ast.VariableRef:
        return ast.VariableRef(_position(token), str(token))


def _expected_words(expected: set[str]) -> str:
    words = sorted({_TOKEN_WORDS.get(name, f"`{name.lower()}`") for name in expected if not name.startswith("__")})
    if len(words) > 6:
        words = [*words[:6], "…"]
    return ", ".join(words)


def _syntax_error(error: UnexpectedInput, text: str) -> RuleSyntaxError:
    line = getattr(error, "line", 1) or 1
    column = getattr(error, "column", 1) or 1
    position = Position(line, column, getattr(error, "pos_in_stream", 0) or 0, getattr(error, "pos_in_stream", 0) or 0)
    if isinstance(error, UnexpectedEOF) or (isinstance(error, UnexpectedToken) and error.token.type == "$END"):
        lines = text.split("\n")  # not splitlines(): it also breaks at \x1c-\x1e, \x85, \u2028…, lark does not
        position = Position(len(lines), len(lines[-1]) + 1, len(text), len(text))
        message = f"the rule ends too early: expected {_expected_words(set(error.expected))}"
        if text.count("(") > text.count(")"):
            message = "unclosed parenthesis: a `(` has no matching `)`"
    elif isinstance(error, UnexpectedCharacters):
        message = f"unexpected character {text[error.pos_in_stream or 0]!r}"
    else:
        assert isinstance(error, UnexpectedToken)
        message = f"unexpected `{error.token!s:.30}`: expected {_expected_words(set(error.expected))}"
        if error.token.type == "RPAR" and text.count(")") > text.count("("):
            message = "a `)` has no matching `(`"
    return RuleSyntaxError(message, position, text)


def _parse(text: str, start: str) -> Any:
    if not text or not text.strip():
        raise RuleSyntaxError("the rule is empty", Position(1, 1, 0, 0), text)
    try:
        tree: Tree = _parser().parse(text, start=start)
    except UnexpectedInput as error:
        raise _syntax_error(error, text) from None
    return _ToAst().transform(tree)


def parse_rule(text: str) -> ast.Expr:
    """Parse a criterion rule; raises RuleSyntaxError with line, column and a caret context."""
    return _parse(text, "criterion")


def parse_formula(text: str) -> ast.Term:
    """Parse a derived variable's formula: `weight / (height in m)^2`, `cockcroft_gault(age, weight, creatinine, sex)`.

    Raises RuleSyntaxError with line, column and a caret context, like a rule."""
    try:
        return _parse(text, "formula")
    except RuleSyntaxError as error:  # the messages speak of rules
        raise RuleSyntaxError(error.message.replace("the rule", "the formula"), error.position, text) from None
    except (RecursionError, VisitError) as error:
        if isinstance(error, VisitError) and not isinstance(error.orig_exc, RecursionError):
            raise
        raise RuleSyntaxError("the formula nests too deeply to read", Position(1, 1, 0, 0), text) from None
