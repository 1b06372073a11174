"""The package's layers point down: no module imports a higher layer, or a sibling of its own layer.

    _utils < physics < scenarios < envs < policies < execution < datasets < analysis < sweep
           < {suites | monitor | training} < reports < robogate (the top level) < cli

Every import counts, at module level or inside a function: an upward import deferred into a
function is still an upward edge.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ORDER = ["_utils", "physics", "scenarios", "envs", "policies", "execution", "datasets", "analysis", "sweep",
         ("suites", "monitor", "training"), "reports", "robogate", "cli"]
LEVEL = {name: level for level, layer in enumerate(ORDER)
         for name in (layer if isinstance(layer, tuple) else (layer,))}
FOLDERS = {"robogate": "robogate", "envs": "robogate.envs", "policies": "robogate.policies"}


def modules():
    """(file, its module name) of every module of the package, envs/ and policies/ included."""
    for folder, package in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield path, ".".join([package, *parts])


def layer(module: str) -> str | None:
    """The layer of a robogate module: its subpackage, or ``robogate`` for the top level."""
    parts = module.split(".")
    if parts[0] != "robogate":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in LEVEL else "robogate"


def imported(path: Path, module: str):
    """Every robogate module ``path`` imports, with the line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, node.lineno


def test_every_module_has_a_layer():
    assert {layer(m) for _, m in modules()} <= set(LEVEL)


@pytest.mark.parametrize("path, module", list(modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_no_module_imports_upward_or_sideways(path, module):
    mine = layer(module)
    wrong = []
    for target, line in imported(path, module):
        theirs = layer(target)
        if theirs is None or theirs == mine:
            continue
        if LEVEL[theirs] >= LEVEL[mine]:
            wrong.append(f"line {line}: {module} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(wrong)
