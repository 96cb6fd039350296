"""The layout the project promises: models stand alone, and the repository stands alone."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _imported_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_models_and_their_tests_import_nothing_of_the_harness():
    for path in [*(ROOT / "models").glob("*.py"), *(ROOT / "tests" / "models").glob("*.py")]:
        assert "bench" not in _imported_modules(path), f"{path.relative_to(ROOT)} imports bench"


OUTSIDE = ".." + "/shared"  # the development folder beside the checkout (spelt so, not to match)


def test_no_text_points_outside_the_repository():
    docs = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "results").glob("*.md")]
    for path in [*docs, *ROOT.glob("*/*.py"), *ROOT.glob("*/*/*.py")]:
        assert OUTSIDE not in path.read_text(), f"{path.relative_to(ROOT)} points outside"
