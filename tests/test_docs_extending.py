"""docs/extending.md stays true: every file and name its recipes mention exists, and the recipes work as written
(the column recipe end to end: one declaration, seen in the table, the CSV, the JSON and ``--sort``)."""

from __future__ import annotations

import csv
import io
import json
import re
import sys

import jax
import jax.numpy as jnp
import pytest

from jaxcost import cli
from jaxcost.hlo import engine, opcodes, rules
from jaxcost.measure import hardware
from jaxcost.models.analysis import analyze
from jaxcost.models.rows import Row
from jaxcost.reports import model as model_report
from jaxcost.reports.text import format_bytes
from tests.docs_examples import ROOT

PAGE = ROOT / "docs" / "extending.md"
RECIPES = ("A new opcode rule", "A module formula", "A device", "A subcommand", "A model-report column")


def _recipes() -> dict[str, str]:
    """The page's sections by heading."""
    parts = re.split(r"^## (.+)$", PAGE.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _checklist_items(text: str) -> list[str]:
    """The numbered items of a recipe's checklist, each joined into one line."""
    items, current = [], None
    for line in text.splitlines():
        if re.match(r"^\d+\. ", line):
            current = [line]
            items.append(current)
        elif current is not None and line.startswith("   ") and line.strip():
            current.append(line.strip())
        else:
            current = None
    return [" ".join(item) for item in items]


def test_the_page_has_the_five_recipes_each_a_checklist():
    recipes = _recipes()
    assert list(recipes)[:len(RECIPES)] == list(RECIPES)
    for title in RECIPES:
        assert len(_checklist_items(recipes[title])) >= 3, title


def test_every_file_and_name_a_checklist_mentions_exists():
    """An item names files (``path.py``) and the names it touches in them: each file exists and holds each name (a
    function, class, constant, decorator or field of that name); a test's name is in a test file."""
    checked = 0
    for title in RECIPES:
        for item in _checklist_items(_recipes()[title]):
            quoted = re.findall(r"`([^`]+)`", item)
            files = [ROOT / name for name in quoted if re.fullmatch(r"[\w/]+\.(py|md)", name)]
            assert files, f"{title}: an item names no file: {item}"
            for path in files:
                assert path.is_file(), f"{title}: {path.relative_to(ROOT)} does not exist"
            source = "\n".join(path.read_text() for path in files)
            tests = "\n".join(path.read_text() for path in (ROOT / "tests").glob("test_*.py"))
            for name in quoted:
                bare = name.removeprefix("@").split("(")[0]
                if re.fullmatch(r"[A-Za-z_]\w{2,}", bare) and not re.fullmatch(r"[\w/]+\.(py|md)", name):
                    assert re.search(rf"\b{re.escape(bare)}\b", tests if bare.startswith("test_") else source), \
                        f"{title}: {bare!r} is not in {', '.join(str(p.relative_to(ROOT)) for p in files)}"
                    checked += 1
    assert checked > 40


def test_the_rule_recipe_registry_refuses_what_the_page_says_it_refuses():
    with pytest.raises(ValueError, match="registered twice"):
        rules.rule("slice")(lambda *args: None)
    elementwise = sorted(opcodes.ELEMENTWISE)[0]
    with pytest.raises(ValueError, match="would never run"):
        rules.rule(elementwise)(lambda *args: None)
    assert "slice" in engine.registered_opcodes()


def test_the_device_recipe_refuses_an_incomplete_or_overlapping_record(monkeypatch):
    monkeypatch.setattr(hardware, "DEVICES", list(hardware.DEVICES))
    with pytest.raises(ValueError, match="source must say where the figures come from"):
        hardware.DeviceRecord(name="X", kind_pattern="x", device_kinds=("X",), platform="gpu",
                              flops_per_second={"bf16": 1e12}, bytes_per_second=1e9, memory_bytes=1,
                              interconnect=hardware.Interconnect("PCIe", 1e9, "switch", "src"), source="")
    with pytest.raises(ValueError, match="also matches"):
        hardware.register(hardware.DeviceRecord(
            name="H200 clone", kind_pattern="h200 clone|h200", device_kinds=("H200 clone",), platform="gpu",
            flops_per_second={"bf16": 1e12}, bytes_per_second=1e9, memory_bytes=1,
            interconnect=hardware.Interconnect("PCIe", 1e9, "switch", "src"), source="src"))


def test_a_subcommand_declared_once_reaches_the_parser_the_dispatch_and_the_reference(monkeypatch, capsys):
    pytest.importorskip("docutils", reason="the reference is built by the docs' tools (pip install -e '.[dev]')")
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        import jaxcost_docs
    finally:
        sys.path.remove(str(ROOT / "docs" / "_ext"))

    def add(commands):
        commands.add_parser("hello", help="say hello").add_argument("--name", default="world")

    def run(args):
        print(f"hello, {args.name}")
        return 0

    extra = cli.Subcommand("hello", add, run, False)
    monkeypatch.setattr(cli, "SUBCOMMANDS", (*cli.SUBCOMMANDS, extra))
    monkeypatch.setattr(cli, "COMMANDS", {subcommand.name: subcommand.run for subcommand in cli.SUBCOMMANDS})
    assert cli.main(["hello", "--name", "docs"]) == 0 and capsys.readouterr().out == "hello, docs\n"
    assert list(jaxcost_docs._subparsers(cli.build_parser()))[-1] == "hello"  # the CLI reference lists it


@pytest.mark.cpu
def test_a_column_declared_once_reaches_the_table_the_exports_and_sort(monkeypatch, capsys):
    """The recipe: a figure of ``Row`` (here a property), and one ``Column`` in ``COLUMNS``."""
    monkeypatch.setattr(Row, "extra_bytes", property(lambda row: max(row.compiler_bytes - row.bytes_accessed, 0)
                                                     if row.formula else 0), raising=False)
    column = model_report.Column("extra_bytes", "extra bytes", show=format_bytes, sortable=True, keep=2)
    monkeypatch.setattr(model_report, "COLUMNS", (*model_report.COLUMNS, column))

    from examples.my_model import build

    report = analyze(build(), jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32))
    extra = {row.path: row.extra_bytes for row in report.rows}
    assert any(extra.values())
    assert "extra bytes" in model_report.render(report).splitlines()[0]
    records = list(csv.DictReader(io.StringIO(model_report.to_csv(report))))
    assert {record["path"]: int(record["extra_bytes"]) for record in records} == extra
    assert {row["path"]: row["extra_bytes"] for row in json.loads(model_report.to_json(report))["rows"]} == extra
    assert "extra_bytes" in model_report.sort_keys()

    status = cli.main(["model", f"{ROOT / 'examples' / 'my_model.py'}:build", "--resolution", "16", "--sort",
                       "extra_bytes"])
    table = capsys.readouterr().out.splitlines()
    assert status == 0
    header = next(index for index, line in enumerate(table) if line.startswith("module"))
    assert "extra bytes" in table[header]
    largest = max((path for path in extra if extra[path]), key=extra.get)
    assert table[header + 2].split()[0] == largest  # the largest first
