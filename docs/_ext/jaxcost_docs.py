"""Sphinx directives that generate jaxcost's reference pages from the code, so nothing there is written twice.

- ``jaxcost-cli``: every subcommand of ``jaxcost.cli.build_parser()``, its usage and each option with its help.
- ``jaxcost-exit-statuses``: the table of ``jaxcost.cli.EXIT_STATUSES``.
- ``jaxcost-api``: autodoc of every name in ``jaxcost.__all__``, grouped by the module that defines it, then of
  the dotted names given as the directive's content (for use inside an ``eval-rst`` block).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

#: The headings of the API page, by the module (prefix) a public name comes from, in order.
API_GROUPS = (
    ("Layer specs and paper formulas", ("jaxcost.specs", "jaxcost.formulas", "jaxcost.modules")),
    ("The compiler's count and the comparison", ("jaxcost.compiler", "jaxcost.comparison", "jaxcost.hlo")),
    ("Whole models and device memory", ("jaxcost.models",)),
    ("Measured time, traces and peaks", ("jaxcost.measure",)),
    ("Output and start-up", ("jaxcost.reports", "jaxcost.backends")),
)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands of ``parser`` by name, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_of(parser: argparse.ArgumentParser, name: str) -> str:
    """The one-line help a parent parser gave subcommand ``name``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def _option_term(action: argparse.Action) -> str:
    """``--input N,...,C`` or ``name``: how the option is written."""
    if not action.option_strings:
        return action.metavar or action.dest
    written = ", ".join(action.option_strings)
    if action.nargs == 0:
        return written
    metavar = action.metavar or (f"{{{','.join(map(str, action.choices))}}}" if action.choices else
                                 action.dest.upper())
    return f"{written} {metavar}"


def _option_text(action: argparse.Action) -> str:
    parts = [action.help or ""]
    if action.required and action.option_strings:
        parts.append("(required)")
    if action.option_strings and action.nargs != 0 and action.default not in (None, [], "", argparse.SUPPRESS):
        parts.append(f"(default: {action.default})")
    if isinstance(action, argparse._AppendAction) and "repeatable" not in (action.help or ""):
        parts.append("(repeatable)")
    return " ".join(part for part in parts if part)


class CommandLine(SphinxDirective):
    """A section per subcommand of the ``jaxcost`` command, leaves included, from the parser itself."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from jaxcost.cli import build_parser

        parser = build_parser()
        sections = []
        for name, subparser in _subparsers(parser).items():
            sections.append(self._section(f"jaxcost {name}", subparser, _help_of(parser, name)))
        return sections

    def _section(self, command: str, parser: argparse.ArgumentParser, summary: str) -> nodes.section:
        section = nodes.section(ids=[nodes.make_id("cli " + command)], names=[nodes.fully_normalize_name(command)])
        section += nodes.title(text=command)
        if summary:
            section += nodes.paragraph(text=summary[0].upper() + summary[1:] + ("" if summary.endswith(".") else "."))
        usage = parser.format_usage().strip()
        section += nodes.literal_block(usage, usage)
        options = nodes.definition_list()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            item = nodes.definition_list_item()
            item += nodes.term("", "", nodes.literal(text=_option_term(action)))
            item += nodes.definition("", nodes.paragraph(text=_option_text(action)))
            options += item
        if len(options):
            section += options
        for name, subparser in _subparsers(parser).items():
            section += self._section(f"{command} {name}", subparser, _help_of(parser, name))
        return section


class ExitStatuses(SphinxDirective):
    """The exit statuses the command line documents in its ``--help`` (``jaxcost.cli.EXIT_STATUSES``), as a table."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from jaxcost.cli import EXIT_STATUSES

        rows = [line.strip().split(None, 1) for line in EXIT_STATUSES.splitlines()[1:] if line.strip()]
        table = nodes.table()
        group = nodes.tgroup(cols=2)
        table += group
        group += nodes.colspec(colwidth=1)
        group += nodes.colspec(colwidth=8)
        head = nodes.thead()
        body = nodes.tbody()
        group += head
        group += body
        for target, (status, meaning) in [(head, ("exit status", "meaning")), *((body, row) for row in rows)]:
            line = nodes.row()
            line += nodes.entry("", nodes.paragraph("", "", nodes.literal(text=status)))
            line += nodes.entry("", nodes.paragraph(text=meaning))
            target += line
        return [table]


def _documenter(name: str, obj: object) -> str:
    if inspect.isclass(obj):
        return "autoclass"
    if callable(obj):
        return "autofunction"
    return "autodata"


def _defining_module(name: str, obj: object) -> str:
    """The module that defines public name ``name`` of jaxcost (its ``#:`` comment is read there)."""
    module = getattr(obj, "__module__", None)
    if isinstance(module, str) and module.startswith("jaxcost.") and not isinstance(obj, (dict, list, tuple)):
        return module
    for module_name, loaded in sorted(sys.modules.items()):
        if module_name.startswith("jaxcost.") and getattr(loaded, name, None) is obj:
            return module_name
    return "jaxcost"


class Api(SphinxDirective):
    """autodoc of ``jaxcost.__all__``, grouped (``API_GROUPS``), then of the dotted names in the content."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        import jaxcost

        grouped: dict[str, list[str]] = {title: [] for title, _ in API_GROUPS}
        for name in jaxcost.__all__:
            obj = getattr(jaxcost, name)
            module = _defining_module(name, obj)
            title = next((title for title, prefixes in API_GROUPS if module.startswith(prefixes)), None)
            if title is None:
                raise self.error(f"jaxcost.{name} comes from {module}, which no group of API_GROUPS takes")
            kind = _documenter(name, obj)
            target = f"{module}.{name}" if kind == "autodata" else f"jaxcost.{name}"
            grouped[title].append(f".. {kind}:: {target}" + ("\n   :no-value:" if kind == "autodata" else ""))
        lines: list[str] = []
        for title, directives in grouped.items():
            lines += [f".. rubric:: {title}", ""]
            for directive in directives:
                lines += [*directive.splitlines(), ""]
        extra = [line.strip() for line in self.content if line.strip()]
        if extra:
            lines += [".. rubric:: Records and declarations the reports and recipes use", ""]
        for dotted in extra:
            module_name, _, name = dotted.rpartition(".")
            obj = getattr(importlib.import_module(module_name), name)
            lines += [f".. {_documenter(name, obj)}:: {dotted}", ""]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="jaxcost-api"), self.content_offset, container)
        return container.children


def setup(app):  # noqa: ANN001, ANN201 (Sphinx's extension entry point)
    app.add_directive("jaxcost-cli", CommandLine)
    app.add_directive("jaxcost-exit-statuses", ExitStatuses)
    app.add_directive("jaxcost-api", Api)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
