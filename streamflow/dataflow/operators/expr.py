"""`{"expr": "..."}` in a plan: a Python expression over the record `r`, checked against an
allow-list of syntax before it is compiled, because plans arrive over the network.

Allowed: literals and displays (`{**r, 'fast': r['speed'] > 100}`), arithmetic, comparisons,
boolean logic, conditional expressions, comprehensions, subscripts and slices, public attribute
access (`r.speed` on a namedtuple or dataclass record), and calls of the functions in FUNCTIONS.
Nothing else: no other names (so no builtins, no `__import__`), no attribute that starts with an
underscore (so no way from an object to its class, globals or builtins), no lambdas, no calls of
anything but a named function, no f-strings, and `**` only with a small constant exponent.
The checked tree compiles to ordinary bytecode evaluated with empty builtins, so an expression
costs what the same lambda costs.
"""
from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from streamflow.errors import PlanError

FUNCTIONS: dict[str, Callable[..., Any]] = {
    f.__name__: f for f in (abs, min, max, len, round, sum, any, all, sorted, int, float, str, bool)}
MAX_EXPONENT = 1024
MAX_LENGTH = 10_000  # characters of one expression

_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Store,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.BitAnd, ast.BitOr, ast.BitXor, ast.LShift, ast.RShift,
    ast.UnaryOp, ast.UAdd, ast.USub, ast.Not, ast.Invert,
    ast.BoolOp, ast.And, ast.Or,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot,
    ast.IfExp, ast.Subscript, ast.Slice, ast.Attribute, ast.Call, ast.keyword, ast.Starred,
    ast.Dict, ast.List, ast.Tuple, ast.Set,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension,
)


class _Check(ast.NodeVisitor):
    """Raises ValueError naming the first construct outside the allow-list."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def generic_visit(self, node: ast.AST) -> None:
        if not isinstance(node, _NODES):
            raise ValueError(f"{type(node).__name__} is not allowed")
        super().generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id not in self.names:
            raise ValueError(f"name {node.id!r} is not allowed (names: r, {', '.join(FUNCTIONS)})")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith("_"):
            raise ValueError(f"attribute {node.attr!r} is not allowed (no attribute may start with '_')")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id not in FUNCTIONS:
            raise ValueError(f"{node.func.id!r} may not be called (only {', '.join(FUNCTIONS)})")
        if any(k.arg is None for k in node.keywords):
            raise ValueError("** arguments are not allowed")
        self.generic_visit(node)  # the innermost offence first: __import__('os').system(...)
        if not isinstance(node.func, ast.Name):
            raise ValueError(f"only {', '.join(FUNCTIONS)} may be called")

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, (ast.Pow, ast.LShift)):
            e = node.right
            if not (isinstance(e, ast.Constant) and type(e.value) in (int, float) and abs(e.value) <= MAX_EXPONENT) \
                    or any(isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Pow, ast.LShift))
                           for n in ast.walk(node.left)):
                raise ValueError(f"** and << need a constant right side of at most {MAX_EXPONENT}, not nested")
        self.generic_visit(node)


def _comprehension_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.comprehension):
            for target in ast.walk(node.target):
                if isinstance(target, ast.Name):
                    names.add(target.id)
    return names


def check_expr(expr: Any, what: str) -> ast.Expression:
    """The parsed expression, or a PlanError naming `what` and what is not allowed."""
    if not isinstance(expr, str):
        raise PlanError(f"{what}: expected an expression string, got {type(expr).__name__}")
    if len(expr) > MAX_LENGTH:
        raise PlanError(f"{what}: expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise PlanError(f"{what}: invalid expression {expr!r}: {getattr(exc, 'msg', exc)}") from None
    except RecursionError:
        raise PlanError(f"{what}: expression nested too deeply") from None
    comprehended = _comprehension_names(tree)
    if comprehended & (set(FUNCTIONS) | {"r"}):
        raise PlanError(f"{what}: refused {expr!r}: a comprehension may not rebind r or a function name")
    try:
        _Check({"r", *FUNCTIONS, *comprehended}).visit(tree)
    except ValueError as exc:
        raise PlanError(f"{what}: refused {expr!r}: {exc}") from None
    except RecursionError:
        raise PlanError(f"{what}: expression nested too deeply") from None
    return tree


def compile_expr(expr: Any, what: str = "expression") -> Callable[[Any], Any]:
    """`"r['speed'] > 20"` -> a function of the record r, checked and compiled once."""
    tree = check_expr(expr, what)
    fn = ast.Expression(ast.Lambda(
        ast.arguments(posonlyargs=[], args=[ast.arg("r")], kwonlyargs=[], kw_defaults=[], defaults=[]),
        tree.body))
    code = compile(ast.fix_missing_locations(fn), f"<{what}>", "eval")
    return eval(code, {"__builtins__": {}, **FUNCTIONS})  # noqa: S307 - the tree passed the allow-list
