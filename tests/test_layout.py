"""The package's layering: no import circles, the paper side and the HLO layer free of JAX, renderers that
import no compiler. Imports are read from the source (function-level ones included; ``if TYPE_CHECKING:``
blocks, which never run, excluded) and checked at run time in a fresh interpreter."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "jaxcost"
JAX_FAMILY = ("jax", "jaxlib", "flax", "optax")

PAPER_SIDE = {"jaxcost.specs", "jaxcost.formulas"}
#: A leaf every layer may use: units and plain-text tables.
TEXT_HELPERS = {"jaxcost.reports.text"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), wherever the import statement stands."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if f"{node.module}.{alias.name}" in MODULES)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


GRAPH = {name: {imported for imported in _imports(path) if imported in MODULES and imported != name}
         for name, path in MODULES.items()}


def _cycle() -> list[str] | None:
    """One import circle of the graph, or None."""
    state: dict[str, str] = {}

    def walk(node: str, trail: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(GRAPH[node]):
            if state.get(target) == "open":
                return trail[trail.index(target):] + [node, target] if target in trail else [node, target]
            if target not in state:
                found = walk(target, trail + [node])
                if found:
                    return found
        state[node] = "done"
        return None

    for name in sorted(GRAPH):
        if name not in state:
            found = walk(name, [])
            if found:
                return found
    return None


def test_the_reader_finds_the_imports():
    assert "jaxcost.hlo.rules" in GRAPH["jaxcost.hlo.program"]
    assert "jaxcost.modules" in GRAPH["jaxcost.compiler"]  # an import inside a function counts
    assert "jaxcost.comparison" not in GRAPH["jaxcost.reports.layer"]  # under TYPE_CHECKING only


def test_no_import_circles():
    assert _cycle() is None, " -> ".join(_cycle() or [])


def test_the_cycle_finder_finds_a_circle():
    GRAPH["jaxcost.specs"].add("jaxcost.formulas")
    try:
        assert _cycle() is not None
    finally:
        GRAPH["jaxcost.specs"].discard("jaxcost.formulas")


@pytest.mark.parametrize("name", sorted(PAPER_SIDE))
def test_the_paper_side_imports_no_jax_and_nothing_above_it(name):
    imports = _imports(MODULES[name])
    assert not {module for module in imports if module.split(".")[0] in JAX_FAMILY}
    assert {module for module in imports if module in MODULES} <= PAPER_SIDE | TEXT_HELPERS


@pytest.mark.parametrize("name", sorted(name for name in MODULES if name.startswith("jaxcost.hlo")))
def test_the_hlo_layer_reads_text_without_jax(name):
    imports = _imports(MODULES[name])
    assert not {module for module in imports if module.split(".")[0] in JAX_FAMILY}
    outside = {module for module in imports if module in MODULES and not module.startswith("jaxcost.hlo")}
    assert outside <= TEXT_HELPERS | {"jaxcost.reports.program"}


@pytest.mark.parametrize("name", sorted(name for name in MODULES if name.startswith("jaxcost.reports")))
def test_renderers_import_no_compiler(name):
    imports = {module for module in _imports(MODULES[name]) if module in MODULES}
    assert all(module.startswith("jaxcost.reports") or module in PAPER_SIDE for module in imports), imports


def test_nothing_imports_the_command_line():
    """But the installed command, which starts it (``jaxcost.__main__``)."""
    assert not [name for name, targets in GRAPH.items() if "jaxcost.cli" in targets and name != "jaxcost.__main__"]


def test_importing_the_paper_side_the_hlo_layer_and_the_renderers_loads_no_jax():
    modules = ["jaxcost", *sorted(PAPER_SIDE), "jaxcost.hlo.program", "jaxcost.hlo.buffers", "jaxcost.reports.layer",
               "jaxcost.reports.model", "jaxcost.reports.performance", "jaxcost.measure.hardware"]
    code = (f"import importlib, sys\nfor name in {modules!r}:\n    importlib.import_module(name)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {JAX_FAMILY!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_the_public_api_is_reachable_after_import():
    code = ("import jaxcost as jc; m = jc.models.build('mobilenet_v2'); "
            "print(type(m).__name__, jc.benchmark.__name__, jc.analyze.__name__, jc.compare.__name__, "
            "jc.compiled.__name__, jc.analytic.__name__, jc.flax_module.__name__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == ["MobileNetV2", "benchmark", "analyze", "compare", "compiled", "analytic",
                                     "flax_module"]


def test_the_quick_start_says_how_to_reach_the_command_it_installs_before_using_it():
    readme = (PACKAGE.parent / "README.md").read_text()
    activate = readme.index("source .venv/bin/activate")
    typed = min(at for at in (readme.find("\njaxcost "), readme.find("\n$ jaxcost ")) if at >= 0)
    assert readme.index("make report") < activate < typed  # the first command typed bare
    assert "source $(BIN)/activate" in (PACKAGE.parent / "Makefile").read_text()  # and make report says it too
