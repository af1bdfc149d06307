"""A small, targeted mutation driver for the protocol's security checks (used because mutmut 3.8.1
could not get through this code base in the time available: see README.md).

Mutants: for every ``if`` whose body raises, calls ``self.bad``/``bad``/``breach`` or appends a
``Breach``, and for every such statement on its own:
  disable  - the condition replaced by ``False`` (the check switched off)
  negate   - the condition replaced by ``not (condition)``
  boundary - one comparison in the condition swapped (< <=, > >=) 
  remove   - an unconditional raise / bad / breach statement replaced by ``pass``
  drop     - one operand of the condition's top-level ``or`` dropped (one clause of the check
             switched off), and for a fast path ``if A and B: return ...`` one operand of the
             ``and`` dropped (the fast path taken on less evidence)
Also checks (MUT_EXTRA=1): ``return False`` / ``return None`` / ``return`` (a negative verdict, a way out) and a call of a
function or method named in MUT_MARKS (comma separated, e.g. ``add`` for ``dirty.add(r)``,
``check_entry`` for a check that raises).
MUT_FUNCS (comma separated ``func`` or ``Class.func``) restricts the mutants to those functions;
MUT_LIST=1 lists the mutants without running them.
Each mutant is applied in a forked child of one process (torch, the package and pytest imported
once) by swapping the function's ``__code__``, and the focused tests run with ``-x -q``; a nonzero
pytest exit (or a timeout) kills it. Usage:
  python benchmarks/mutation/drive.py MODULE_FILE [MODULE_FILE ...] -- TEST [TEST ...]
Writes one JSON line per mutant to stdout.
"""

from __future__ import annotations

import __future__
import ast
import copy
import importlib
import json
import os
import signal
import sys
import time

TIMEOUT = float(os.environ.get("MUT_TIMEOUT", "150"))
OPS = os.environ.get("MUT_OPS", "disable,remove").split(",")  # also: negate, boundary
ONLY = os.environ.get("MUT_ONLY")  # "file:line:op" filter (comma separated)
FUNCS_ONLY = set(filter(None, os.environ.get("MUT_FUNCS", "").split(",")))  # "func" or "Class.func"
EXTRA = os.environ.get("MUT_EXTRA") == "1"  # return False / return None as checks
MARKS = set(filter(None, os.environ.get("MUT_MARKS", "").split(",")))  # more methods whose call marks a failure
LIST = os.environ.get("MUT_LIST") == "1"


def is_check_stmt(s: ast.stmt) -> bool:
    if isinstance(s, ast.Raise):
        return True
    if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call):
        f = s.value.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        if name in ("bad", "breach") or name in MARKS:
            return True
        if name == "append" and any(isinstance(a, ast.Call) and getattr(a.func, "id", "") == "Breach" for a in s.value.args):
            return True
    return EXTRA and isinstance(s, ast.Return) and (s.value is None or isinstance(s.value, ast.Constant)
                                                    and (s.value.value is False or s.value.value is None))


def fast_path(node: ast.If) -> bool:
    """``if A and B ...: return [something]``: an early acceptance or exit (a cache, a fast path); not a
    ``return False`` / ``return None`` verdict."""
    v = node.body[0].value if len(node.body) == 1 and isinstance(node.body[0], ast.Return) else False
    return (isinstance(node.test, ast.BoolOp) and isinstance(node.test.op, ast.And) and v is not False
            and (v is None or not (isinstance(v, ast.Constant) and (v.value is False or v.value is None))))


def guards(node: ast.If) -> bool:
    return any(is_check_stmt(s) for s in node.body)


FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)  # async def too (zkauction/service/)
SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}


def mutants_of(func: ast.FunctionDef):
    """Yield (line, op, description, mutated FunctionDef)."""
    nodes = [n for n in ast.walk(func)]
    for idx, n in enumerate(nodes):
        if "drop" in OPS and isinstance(n, ast.If) and isinstance(n.test, ast.BoolOp) and (
                guards(n) and isinstance(n.test.op, ast.Or) or fast_path(n)):
            for k in range(len(n.test.values)):
                f2 = copy.deepcopy(func)
                t = [m for m in ast.walk(f2)][idx]
                rest = t.test.values[:k] + t.test.values[k + 1:]
                t.test = rest[0] if len(rest) == 1 else ast.BoolOp(t.test.op, rest)
                yield n.lineno, "drop", f"drop {ast.unparse(n.test.values[k])[:140]}", f2
        if isinstance(n, ast.If) and guards(n):
            for op in [o for o in OPS if o in ("disable", "negate")]:
                f2 = copy.deepcopy(func)
                t = [m for m in ast.walk(f2)][idx]
                t.test = ast.Constant(False) if op == "disable" else ast.UnaryOp(ast.Not(), t.test)
                yield n.lineno, op, ast.unparse(n.test)[:160], f2
            cmps = [c for c in ast.walk(n.test) if isinstance(c, ast.Compare)] if "boundary" in OPS else []
            for ci, c in enumerate(cmps):
                for oi, o in enumerate(c.ops):
                    if type(o) in SWAP:
                        f2 = copy.deepcopy(func)
                        t = [m for m in ast.walk(f2)][idx]
                        c2 = [x for x in ast.walk(t.test) if isinstance(x, ast.Compare)][ci]
                        c2.ops[oi] = SWAP[type(o)]()
                        yield n.lineno, "boundary", ast.unparse(c2)[:160], f2
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(n, field, None)
            if not isinstance(block, list) or isinstance(n, ast.If) and field == "body" and guards(n) and len(block) == 1:
                continue
            for si, s in enumerate(block):
                if "remove" in OPS and isinstance(s, ast.stmt) and is_check_stmt(s) and not (isinstance(n, ast.If) and field == "body"):
                    f2 = copy.deepcopy(func)
                    t = [m for m in ast.walk(f2)][idx]
                    getattr(t, field)[si] = ast.Pass()
                    yield s.lineno, "remove", ast.unparse(s)[:160], f2


def targets(path: str):
    mod = path.removesuffix(".py").replace("/", ".")
    tree = ast.parse(open(path).read())
    for top in tree.body:
        if isinstance(top, FUNCS):
            yield mod, None, top
        elif isinstance(top, ast.ClassDef):
            for f in top.body:
                if isinstance(f, FUNCS):
                    yield mod, top.name, f


def apply(mod: str, cls: str | None, f2: ast.FunctionDef) -> None:
    m = importlib.import_module(mod)
    owner = getattr(m, cls) if cls else m
    orig = owner.__dict__[f2.name]
    fn = getattr(orig, "__func__", orig)
    fn = getattr(fn, "__wrapped__", fn)
    f2.decorator_list = []
    src = ast.Module([f2], [])
    ast.fix_missing_locations(src)
    ns: dict = {}
    flags = __future__.annotations.compiler_flag if getattr(m, "annotations", None) is __future__.annotations else 0
    exec(compile(src, m.__file__, "exec", flags=flags), dict(m.__dict__), ns)
    fn.__code__ = ns[f2.name].__code__


def main() -> None:
    sys.path.insert(0, os.getcwd())  # the package under test is the one in the working directory
    sep = sys.argv.index("--")
    files, tests = sys.argv[1:sep], sys.argv[sep + 1:]
    import pytest  # noqa: F401  (imported once, before forking)
    import torch  # noqa: F401
    for f in files:
        importlib.import_module(f.removesuffix(".py").replace("/", "."))
    only = set(ONLY.split(",")) if ONLY else None
    for path in files:
        for mod, cls, func in targets(path):
            qual = f"{cls + '.' if cls else ''}{func.name}"
            if FUNCS_ONLY and func.name not in FUNCS_ONLY and qual not in FUNCS_ONLY:
                continue
            for line, op, desc, f2 in mutants_of(func):
                key = f"{path}:{line}:{op}:{desc}"
                if only and not any(key.startswith(o) for o in only):
                    continue
                if LIST:
                    print(json.dumps({"file": path, "line": line, "func": qual, "op": op, "check": desc}), flush=True)
                    continue
                t0 = time.time()
                failed_path = f"/tmp/mutdrive_failed_{os.getpid()}"
                if os.path.exists(failed_path):
                    os.unlink(failed_path)
                pid = os.fork()
                if pid == 0:
                    try:
                        apply(mod, cls, f2)
                    except Exception as e:  # noqa: BLE001
                        print(f"cannot apply {key}: {e}", file=sys.stderr)
                        os._exit(99)
                    fd = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(fd, 1)
                    os.dup2(fd, 2)
                    import pytest

                    class First:  # the first failing test, for the result line
                        out = failed_path

                        def pytest_runtest_logreport(self, report):
                            if report.failed and not os.path.exists(self.out):
                                with open(self.out, "w") as fh:
                                    fh.write(report.nodeid)

                    rc = pytest.main(["-p", "no:cacheprovider", "-x", "-q", *tests], plugins=[First()])
                    os._exit(int(rc))
                deadline = t0 + TIMEOUT
                while True:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        rc = os.waitstatus_to_exitcode(status)
                        break
                    if time.time() > deadline:
                        os.kill(pid, signal.SIGKILL)
                        os.waitpid(pid, 0)
                        rc = "timeout"
                        break
                    time.sleep(0.2)
                result = ("error" if rc == 99 else "survived" if rc == 0 else "timeout" if rc == "timeout"
                          else "killed")
                failed = None
                if os.path.exists(failed_path):
                    with open(failed_path) as fh:
                        failed = fh.read()
                    os.unlink(failed_path)
                print(json.dumps({"file": path, "line": line, "func": f"{cls + '.' if cls else ''}{func.name}",
                                  "op": op, "check": desc, "result": result, "rc": rc,
                                  "seconds": round(time.time() - t0, 1), "failed": failed}), flush=True)


if __name__ == "__main__":
    main()
