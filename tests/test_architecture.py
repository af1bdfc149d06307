"""The package's layout holds: no import cycles, lower layers never import higher ones, modules stay
small, and the verification path starts without torch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "zkauction"
MAX_LINES = 500
# A layer may import only the layers listed for it (and itself); the top-level package and the
# sub-packages' __init__ files hold no code that imports anything of the project. `zkauction.errors`
# (the ZkAuctionError base) is below every layer: it imports nothing and any layer may import it.
LAYERS = {"errors": set(), "learn": {"errors"}, "zk": {"learn", "errors"}, "protocol": {"zk", "learn", "errors"},
          "service": {"protocol", "zk", "learn", "errors"}, "cli": {"service", "protocol", "zk", "learn", "errors"}}
BASE_MODULES = {"zkauction.errors": "errors", "zkauction.jsontext": "errors"}  # single modules below every layer
EXAMPLE_PROOF = ROOT / "circuits" / "ama_2x2_uniform" / "example_proof.json"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every project module ``path`` imports, at any depth (function-level imports included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out |= {n for n in names if n in known}
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports_of(p, set(mods)) - {m} for m, p in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def layer_of(module: str) -> str | None:
    if module == "zkauction.__main__":  # `python -m zkauction` is the command line
        return "cli"
    if module in BASE_MODULES:
        return BASE_MODULES[module]
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_lower_layers_never_import_higher_ones():
    bad = []
    for m, deps in import_graph().items():
        lm = layer_of(m)
        for d in deps:
            ld = layer_of(d)
            if ld is None and d != "zkauction":
                bad.append(f"{m} imports {d}, which is in no layer")
            elif lm is None and ld is not None:
                bad.append(f"{m} (top level) imports {d}")
            elif lm is not None and ld is not None and ld != lm and ld not in LAYERS[lm]:
                bad.append(f"{m} ({lm}) imports {d} ({ld})")
    assert not bad, "\n".join(bad)


def test_every_layer_exists():
    packages = {p.name for p in PKG.iterdir() if (p / "__init__.py").is_file()}
    assert set(LAYERS) - set(BASE_MODULES.values()) <= packages
    assert set(BASE_MODULES) <= set(modules())


def test_the_error_base_imports_nothing():
    """`zkauction.errors` sits below every layer: no import at all, not even of the standard library."""
    tree = ast.parse((PKG / "errors.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_no_module_above_the_size_limit():
    big = {m: n for m, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules above {MAX_LINES} lines: {big}"


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("module", ["zkauction", "zkauction.zk.bundle", "zkauction.protocol.log",
                                    "zkauction.protocol.audit", "zkauction.cli"])
def test_verification_path_imports_no_torch(module):
    r = _run(f"import sys, {module}; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))"
             .replace("import sys,", "import sys, json,"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []


def test_lazy_top_level_names_still_import():
    r = _run("import sys, zkauction; assert 'torch' not in sys.modules; from zkauction import load_auction, "
             "AuctionNet, RegretNet, AuctionSetting, ParticipationModel, SettingError; print('torch' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"


def test_verify_command_on_the_shipped_proof_never_imports_torch(tmp_path):
    """`zkauction verify proof.json` on a shipped proof, run as the console script would be, from
    another directory: it verifies, and torch is never imported."""
    code = (
        "import sys, json\n"
        "from zkauction.cli import app\n"
        f"try:\n    app(['verify', {str(EXAMPLE_PROOF)!r}, '--circuit', {str(EXAMPLE_PROOF.parent)!r}])\n"
        "except SystemExit as e:\n    code = e.code\n"
        "print(json.dumps({'exit': code, 'torch': sorted(m for m in sys.modules if m.split('.')[0] == 'torch')}))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out == {"exit": 0, "torch": []}, r.stdout + r.stderr
    assert "valid" in r.stdout
