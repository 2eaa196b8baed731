"""The packages import one way: optics → captioning → attacks → endtoend (docs/design.md,
"Layers"). A module may import its own package and the ones below it, never one above."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("optics", "captioning", "attacks", "endtoend")


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file, function-level imports included
    (a relative import stays inside its own package, so it is never upward)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def upward_imports(root: Path) -> list[str]:
    """``"file imports package"`` for every import of a layer above the file's own."""
    found = []
    for rank, package in enumerate(LAYERS):
        for path in sorted((root / package).rglob("*.py")):
            above = imported_packages(path) & set(LAYERS[rank + 1 :])
            found += [f"{path.relative_to(root)} imports {name}" for name in sorted(above)]
    return found


def test_no_package_imports_a_layer_above_it():
    assert upward_imports(ROOT) == []


@pytest.mark.parametrize(
    ("package", "source", "upward"),
    [
        ("optics", "from attacks.metrics import ssim\n", True),
        ("captioning", "def f():\n    import endtoend.demo\n", True),
        ("attacks", "from captioning.vocab import Vocabulary\nfrom . import otf\n", False),
        ("endtoend", "import optics, captioning, attacks\n", False),
    ],
)
def test_the_check_finds_upward_imports_inside_functions_too(tmp_path, package, source, upward):
    (tmp_path / package).mkdir()
    (tmp_path / package / "mod.py").write_text(source)
    assert bool(upward_imports(tmp_path)) is upward
