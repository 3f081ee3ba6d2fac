"""Runs the examples of a markdown page (README.md, docs/*.md, examples/README.md) and checks what they print.

A page's ```python blocks run in one fresh interpreter, in page order, interleaved with its ```bash and ```console
blocks, which run in bash with this interpreter's bin folder first on PATH (so ``jaxcost`` is the installed command);
all of them in one temporary working folder per page, where ``examples/`` is the repository's. Every process runs
with the CPU as JAX's device, the device the pages' outputs were made on.

What a block prints is checked against the page where the page shows it:

- a ```console block: each ``$ command`` line (``\\`` continues it) is followed by what it prints;
- any other runnable block: a ```text block right after it (blank lines and markers between) is what it prints
  (stdout for Python; stdout and stderr for a shell block, as a terminal shows them).

A line that is ``...`` alone stands for any number of lines; ``...`` within a line for any text. HTML comments
right above a block are markers, invisible on the rendered page but in its source:

- ``<!-- skip: REASON -->``: the block is not run (a SLURM script, an ssh loop, a pip install, a GPU);
- ``<!-- output: machine-dependent -->``: the block runs, its output is not compared (times, this CPU's peaks);
- ``<!-- file: NAME -->``: the block is not run but written to NAME in the working folder (a grid, a model file).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUNNABLE = {"python": "python", "bash": "shell", "sh": "shell", "shell": "shell", "console": "console"}
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
MARKER = re.compile(r"^<!--\s*(?P<kind>skip|output|file)\s*:\s*(?P<value>.*?)\s*-->$")

#: Pages this project does not own the source of, and the reason none of their blocks runs here.
SKIPPED_PAGES = {
    "docs/clusters.md": "its blocks run on a SLURM cluster or over ssh; tests/test_slurm.py runs its script on a "
                        "single-node cluster",
}

#: Pages whose examples compile for a TPU target, which needs libtpu (``pip install 'jaxcost[tpu]'``, as the test
#: extras do): where it is not installed (a GPU machine's own JAX) they are skipped with that said.
NEEDS_LIBTPU = {"docs/tpu.md"}


@dataclass
class Block:
    """One fenced block of a page: its language, first line (1-based, the fence's), text and markers."""

    language: str
    line: int
    text: str
    markers: dict[str, str] = field(default_factory=dict)
    #: What the page shows the block prints (the text block after it), or None.
    expected: str | None = None
    expected_line: int = 0

    @property
    def kind(self) -> str | None:
        """``python``, ``shell`` or ``console`` for a block that runs; None for one that is shown only."""
        return RUNNABLE.get(self.language)

    @property
    def compared(self) -> bool:
        return self.markers.get("output") != "machine-dependent"


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a markdown text, with their markers and the output each is shown to print."""
    lines = text.splitlines()
    found: list[Block] = []
    markers: dict[str, str] = {}
    #: The block just closed, while only blank lines and markers follow it.
    adjacent: Block | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = MARKER.match(line.strip())
        opening = FENCE.match(line)
        if marker:
            markers[marker["kind"]] = marker["value"]
        elif opening:
            fence, language = opening["fence"], opening["info"].strip().split(" ")[0]
            body: list[str] = []
            first = index + 1
            index += 1
            while index < len(lines) and not (lines[index].strip().startswith(fence)
                                               and not lines[index].strip().strip(fence[0])):
                body.append(lines[index][len(opening["indent"]):])
                index += 1
            block = Block(language, first, "\n".join(body) + "\n", markers)
            if (language == "text" and adjacent is not None and adjacent.kind in ("python", "shell")
                    and adjacent.expected is None):
                adjacent.expected, adjacent.expected_line = block.text, block.line
                if "output" in markers:
                    adjacent.markers["output"] = markers["output"]
            found.append(block)
            adjacent, markers = block, {}
        elif line.strip():
            adjacent, markers = None, {}
        index += 1
    return found


def console_commands(text: str) -> list[tuple[str, str]]:
    """The ``$ command`` lines of a console block, each with the output shown after it."""
    commands: list[tuple[str, list[str]]] = []
    continued = False
    for line in text.splitlines():
        if continued:
            commands[-1] = (commands[-1][0] + "\n" + line, commands[-1][1])
            continued = line.endswith("\\")
        elif line.startswith("$ "):
            commands.append((line[2:], []))
            continued = line.endswith("\\")
        elif commands:
            commands[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"a console block starts with {line!r}, not with '$ command'")
    return [(command, "\n".join(output)) for command, output in commands]


def _line_matches(expected: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


def output_matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is what ``expected`` shows, ``...`` standing for any text (a line alone: any lines);
    trailing spaces and blank lines at either end are ignored."""
    def normal(text: str) -> list[str]:
        return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n").splitlines()

    wanted, got = normal(expected), normal(actual)
    memo: dict[tuple[int, int], bool] = {}

    def match(i: int, j: int) -> bool:
        if (i, j) not in memo:
            if i == len(wanted):
                memo[i, j] = j == len(got)
            elif wanted[i].strip() == "...":
                memo[i, j] = any(match(i + 1, k) for k in range(j, len(got) + 1))
            else:
                memo[i, j] = j < len(got) and _line_matches(wanted[i], got[j]) and match(i + 1, j + 1)
        return memo[i, j]

    return match(0, 0)


def environment(work: Path) -> dict[str, str]:
    """The environment the examples run in: the venv's commands first, the CPU as JAX's device, no display. Where
    the package is not installed (run from a checkout with PYTHONPATH), ``jaxcost`` is this interpreter's
    ``python -m jaxcost``, from a folder in ``work``."""
    env = dict(os.environ)
    commands = Path(sys.executable).parent
    if not (commands / "jaxcost").exists():
        commands = work / ".commands"
        commands.mkdir(exist_ok=True)
        (commands / "jaxcost").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m jaxcost "$@"\n')
        (commands / "jaxcost").chmod(0o755)
    env["PATH"] = str(commands) + os.pathsep + env.get("PATH", "")
    env.update({"JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg", "ALLOW_MULTIPLE_LIBTPU_LOAD": "1",
                "PYTHONDONTWRITEBYTECODE": "1"})
    env.pop("COLUMNS", None)
    return env


#: The interpreter that runs a page's Python blocks: one JSON line in (the code, where it is), one out (what it
#: printed, or the traceback). Output of native code goes to stderr, so it cannot break the exchange.
DRIVER = r"""
import contextlib, io, json, os, sys, traceback
answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
namespace = {"__name__": "__main__"}
for request in sys.stdin:
    block = json.loads(request)
    printed, error = io.StringIO(), None
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(block["code"], block["where"], "exec"), namespace)
    except BaseException:
        error = traceback.format_exc()
    answers.write(json.dumps({"printed": printed.getvalue(), "error": error}) + "\n")
    answers.flush()
"""


class Failure(AssertionError):
    """A page's example that broke or printed what the page does not show."""


@dataclass
class PageRun:
    """What running a page's examples found: the failures (empty when all is well) and the blocks run."""

    page: str
    failures: list[str] = field(default_factory=list)
    ran: int = 0
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _compare(where: str, expected: str | None, actual: str, compared: bool) -> str | None:
    if expected is None or not compared or output_matches(expected, actual):
        return None
    return f"{where}: printed\n{actual.rstrip()}\n--- but the page shows\n{expected.rstrip()}"


def run_page(path: Path, root: Path = ROOT, timeout: float = 300.0) -> PageRun:
    """Run every runnable block of the page at ``path``; stop at the first that breaks."""
    import time

    started = time.perf_counter()
    path = path.resolve()
    name = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    result = PageRun(name)
    if name in SKIPPED_PAGES:
        result.skipped.append(f"{name}: {SKIPPED_PAGES[name]}")
        return result
    if name in NEEDS_LIBTPU and importlib.util.find_spec("libtpu") is None:
        result.skipped.append(f"{name}: its examples compile for a TPU target, and libtpu is not installed")
        return result
    with tempfile.TemporaryDirectory(prefix="jaxcost-docs-") as folder:
        work = Path(folder)
        env = environment(work)
        if (root / "examples").is_dir():
            (work / "examples").symlink_to(root / "examples")
        python: subprocess.Popen | None = None
        try:
            for block in blocks(path.read_text()):
                where = f"{name}:{block.line}"
                if "file" in block.markers:
                    (work / block.markers["file"]).write_text(block.text)
                    continue
                if block.kind is None:
                    continue
                if "skip" in block.markers:
                    result.skipped.append(f"{where}: {block.markers['skip']}")
                    continue
                result.ran += 1
                if block.kind == "python":
                    if python is None:
                        python = subprocess.Popen([sys.executable, "-u", "-c", DRIVER], cwd=work, env=env, text=True,
                                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                    # padded so that a traceback's line numbers are the page's
                    code = "\n" * block.line + block.text
                    python.stdin.write(json.dumps({"code": code, "where": str(path)}) + "\n")
                    python.stdin.flush()
                    answer = python.stdout.readline()
                    if not answer:
                        result.failures.append(f"{where}: the interpreter exited (status {python.wait()})")
                        break
                    answer = json.loads(answer)
                    if answer["error"]:
                        result.failures.append(f"{where}: raised\n{answer['error']}")
                        break
                    failure = _compare(where, block.expected, answer["printed"], block.compared)
                else:
                    steps = console_commands(block.text) if block.kind == "console" else [(block.text, block.expected)]
                    failure = None
                    for command, shown in steps:
                        ran = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", command], cwd=work, env=env,
                                             text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             timeout=timeout)
                        if ran.returncode:
                            failure = (f"{where}: exit status {ran.returncode} from\n{command}\n--- it printed\n"
                                       f"{ran.stdout.rstrip()}")
                            break
                        failure = _compare(where, shown, ran.stdout, block.compared)
                        if failure:
                            break
                if failure:
                    result.failures.append(failure)
                    break
        finally:
            if python is not None:
                python.stdin.close()
                python.wait(timeout=60)
    result.seconds = time.perf_counter() - started
    return result


def pages(root: Path = ROOT) -> list[Path]:
    """The pages whose examples run: the README, the documentation's pages and the examples' README."""
    found = [root / "README.md", *sorted((root / "docs").glob("*.md")), root / "examples" / "README.md"]
    return [page for page in found if page.is_file()]
