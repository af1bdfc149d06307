"""Classify mutmut 3 mutants (from mutants/<module>.py) before running them.

For each mutant function ``<f>__mutmut_N`` it compares the AST with ``<f>__mutmut_orig``:
``message`` if only string constants differ (an error message, a log line: not a check),
``check`` otherwise. Prints ``<category> <mutant key> <diff summary>`` per mutant.
Usage: python classify.py mutants/zkauction/protocol/state.py [function-substring ...]
"""

from __future__ import annotations

import ast
import difflib
import re
import sys


def strip_strings(node: ast.AST) -> str:
    class S(ast.NodeTransformer):
        def visit_Constant(self, n):
            return ast.Constant("<s>") if isinstance(n.value, str) else n

        def visit_JoinedStr(self, n):
            return ast.Constant("<s>")

        def visit_Raise(self, n):  # the exception's message (or None instead of it) is not a check
            if isinstance(n.exc, ast.Call):
                n.exc.args = [ast.Constant("<s>") for _ in n.exc.args] or [ast.Constant("<s>")]
            return self.generic_visit(n)

    return ast.dump(S().visit(node))


GUARD = re.compile(r"^\s*(if|elif|while|assert)\b|\braise\b|\.bad\(|Breach\(|\bif\b.*\belse\b")


def body(f: ast.AST) -> list[ast.stmt]:
    b = list(f.body)
    if b and isinstance(b[0], ast.Expr) and isinstance(b[0].value, ast.Constant) and isinstance(b[0].value.value, str):
        b = b[1:]  # the docstring
    return b


def main() -> None:
    path, *only = sys.argv[1:]
    module = path.removeprefix("mutants/").removesuffix(".py").replace("/", ".")
    tree = ast.parse(open(path).read())
    funcs: dict[str, ast.AST] = {}
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            funcs[n.name] = n
    for name, n in funcs.items():
        m = re.fullmatch(r"(.*)__mutmut_(\d+)", name)
        if not m or (only and not any(o in m.group(1) for o in only)):
            continue
        orig = funcs.get(m.group(1) + "__mutmut_orig")
        if orig is None:
            continue
        a = ast.unparse(ast.Module(body(orig), [])).splitlines()
        b = ast.unparse(ast.Module(body(n), [])).splitlines()
        diff = [l for l in difflib.unified_diff(a, b, lineterm="", n=0) if l[:1] in "+-" and l[:3] not in ("---", "+++")]
        o = strip_strings(ast.Module(body(orig), []))
        v = strip_strings(ast.Module(body(n), []))
        removed = [l[1:] for l in diff if l.startswith("-")]
        if o == v:
            cat = "message"
        elif any(GUARD.search(l) for l in removed):
            cat = "check"  # a condition guarding a raise / bad / Breach, or the call itself
        else:
            cat = "other"  # a computation, an argument, a default: not the check itself
        print(cat, f"{module}.{name}", " | ".join(x.strip() for x in diff)[:400])


if __name__ == "__main__":
    main()
