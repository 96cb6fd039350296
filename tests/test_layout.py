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


def _bench_imports(path: pathlib.Path) -> set[str]:
    """The ``bench`` modules a file imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "bench" or node.module.startswith("bench."):
                names.add(node.module)  # and its submodules by name (``from bench import x``)
                names |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("bench.")}
    return names


def _module(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in (ROOT / "bench").rglob("*.py")}
    return {name: {m for m in _bench_imports(p) if m in files} for name, p in files.items()}


def test_the_harness_layers_import_downwards_only():
    """models ← workloads/suites ← judge ← claims ← verdicts ← report ← session ← cli (README):
    a suite imports nothing of the claims, the report or the plots, and the plots no claim."""
    graph = _import_graph()
    above_suites = ("bench.claims", "bench.report", "bench.plots")
    for name, imported in graph.items():
        if name.startswith("bench.suites"):
            wrong = {m for m in imported if m.startswith(above_suites)}
            assert not wrong, f"{name} imports {sorted(wrong)}"
    for generic in ("bench.plots", "bench.judge", "bench.figures"):  # they name no claim
        assert not {m for m in graph[generic] if m.startswith("bench.claims")}, generic


def test_the_harness_has_no_import_cycle():
    graph = _import_graph()
    done, path = set(), []

    def visit(name):
        if name in path:
            raise AssertionError("import cycle: " + " → ".join(path[path.index(name) :] + [name]))
        if name in done:
            return
        path.append(name)
        for child in sorted(graph[name]):
            # a package's own modules import the package's registry, which loads them lazily
            if not (child == name.rpartition(".")[0] and name.startswith(child + ".")):
                visit(child)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
