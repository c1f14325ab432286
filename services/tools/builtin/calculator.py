"""calculator: models get arithmetic wrong; this does it right, without ever running code.

The expression is parsed with `ast` and only a whitelist is walked: numbers,
+ - * / // % **, unary signs, parentheses, a few math functions and the
constants pi and e. Names, attributes, calls to anything else, subscripts and
every other construct are refused. The work is bounded: the expression's
length, the size of exponents, of round()'s digits and of every intermediate
integer, so that `9**9**9` is refused at once instead of taking the CPU for minutes
(a tool's timeout cannot stop a computation that holds the interpreter).
"""
from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from ..registry import ToolContext, ToolError, server_tool

MAX_EXPRESSION = 500
MAX_EXPONENT = 10_000
MAX_INTEGER_DIGITS = 1000  # larger intermediate results are refused

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos, ast.USub: operator.neg,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt, "abs": abs, "round": round, "floor": math.floor, "ceil": math.ceil,
    "log": math.log, "log10": math.log10, "exp": math.exp,
    "sin": math.sin, "cos": math.cos, "tan": math.tan,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


@server_tool(
    description="Evaluate an arithmetic expression exactly: numbers, + - * / // % ** and "
                "parentheses, the functions " + ", ".join(_FUNCTIONS) + ", and pi and e.",
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string", "minLength": 1,
                                      "maxLength": MAX_EXPRESSION,
                                      "description": "For example (2 + 3) * sqrt(16) / 7"}},
        "required": ["expression"],
        "additionalProperties": False,
    },
    timeout=2.0, max_output=2000)
def calculator(context: ToolContext, arguments: dict[str, Any]) -> str:
    """The expression's value as text, or an error saying what cannot be computed."""
    return _format(evaluate(arguments["expression"]))


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression; `ToolError` for anything else."""
    if len(expression) > MAX_EXPRESSION:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ToolError(f"{expression!r} is not an arithmetic expression") from None
    try:
        return _value(tree.body)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large") from None
    except (ValueError, TypeError) as exc:  # sqrt(-1), log(0), round(1, 2, 3)
        raise ToolError(f"cannot compute that: {exc}") from None


def _value(node: ast.expr) -> Number:
    """Walk the whitelist; everything else is refused, naming what was found."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _checked(node.value)  # 1e999 is a float too: infinity
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _checked(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(f"unknown name {node.id!r}: only pi and e are known")
    if isinstance(node, ast.Call):
        return _call(node)
    raise ToolError(f"{type(node).__name__} is not allowed: only arithmetic is")


def _call(node: ast.Call) -> Number:
    """A call of a whitelisted function by its plain name, with plain arguments."""
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
        raise ToolError(f"the function {ast.unparse(node.func)[:60]!r} is not available; "
                        "these are: " + ", ".join(_FUNCTIONS))
    if node.keywords:
        raise ToolError("functions take plain arguments here, not name=value")
    arguments = [_value(argument) for argument in node.args]
    if node.func.id == "round" and len(arguments) == 2 and abs(arguments[1]) > MAX_INTEGER_DIGITS:
        # round(123, -10**9) would build 10**(10**9) first: minutes of CPU, holding the GIL
        raise ToolError(f"round() takes at most {MAX_INTEGER_DIGITS} digits either way")
    return _checked(_FUNCTIONS[node.func.id](*arguments))


def _check_power(base: Number, exponent: Number) -> None:
    """Refuse a power whose result would be huge before computing it."""
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"the exponent {_format(exponent)} is too large (at most {MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        digits = exponent * math.log10(abs(base))
        if digits > MAX_INTEGER_DIGITS:
            raise ToolError(f"the result would have about {digits:.0f} digits, more than "
                            f"{MAX_INTEGER_DIGITS}")


def _checked(value: Any) -> Number:
    """A result within bounds: a finite number, an integer of reasonable size."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolError("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INTEGER_DIGITS * 3.33:
        raise ToolError(f"the result has more than {MAX_INTEGER_DIGITS} digits")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("the result is too large")
    return value


def _format(value: Number) -> str:
    """Integers in full; floats without a trailing .0 when they are whole and small."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)
