"""The package's layering, checked on the source: manual stands apart, only viz imports graphviz."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tinygrad_rnn"
CORE = ["tensor.py", "ops.py", "functions.py", "factories.py", "context.py", "gradcheck.py", "numeric.py"]


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(level, module) for every import statement; level > 0 for relative imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_manual_imports_numpy_and_itself_only() -> None:
    files = sorted((PACKAGE / "manual").glob("*.py"))
    assert files
    for path in files:
        for level, module in imports_of(path):
            if level:
                assert level == 1, f"{path.name} reaches outside manual: {'.' * level}{module}"
            else:
                top = module.split(".")[0]
                assert top in {"numpy", "typing", "collections", "functools", "dataclasses", "__future__"}, (
                    f"{path.name} imports {module}"
                )


def test_only_viz_imports_graphviz_and_the_core_imports_no_layer_above_it() -> None:
    for path in PACKAGE.rglob("*.py"):
        modules = [module for _, module in imports_of(path)]
        if "viz" not in path.relative_to(PACKAGE).parts:
            assert not any(m.split(".")[0] == "graphviz" for m in modules), f"{path} imports graphviz"
    for name in CORE:
        for level, module in imports_of(PACKAGE / name):
            top = module.split(".")[0]
            assert top not in {"nn", "viz", "manual", "compare", "comparison", "train", "graphviz"}, (
                f"core module {name} imports {'.' * level}{module}"
            )
