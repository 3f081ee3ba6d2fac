"""Run notebooks in place, so that they are committed with their outputs.

    .venv/bin/python notebooks/execute.py                                # every notebook here
    .venv/bin/python notebooks/execute.py notebooks/model_study.ipynb    # one

Each runs top to bottom on a fresh kernel of this Python, from the notebooks/ folder. The per-cell timestamps
nbclient records are dropped, and native libraries' logs are left out, so a re-run changes only what the cells
print; an output that names a path of this machine (the checkout, the environment, the home or temporary folder)
is an error, so none is committed.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
#: What native libraries write straight to the process's stderr (libtpu looking for a TPU on a machine without
#: one, stamped with the time and the process id) stays in the kernel's log, out of the notebook; what the cells
#: print or warn through Python is kept.
KERNEL_ARGUMENTS = ["--IPKernelApp.capture_fd_output=False"]


def machine_paths() -> list[str]:
    """Absolute paths of this machine that must not appear in a committed output."""
    paths = {str(HERE.parent), sys.prefix, sys.base_prefix, str(Path.home()), tempfile.gettempdir()}
    return sorted(path for path in paths if len(path) > 1)


def normalize(book: nbformat.NotebookNode) -> None:
    """Drop what changes on every run without saying anything: the execution timestamps of each cell, and where
    the kernel happened to cut a cell's printing into pieces (consecutive pieces of one stream are joined)."""
    for cell in book.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            previous = outputs[-1] if outputs else None
            if (output.output_type == "stream" and previous is not None and previous.output_type == "stream"
                    and previous.name == output.name):
                previous.text += output.text
            else:
                outputs.append(output)
        cell.outputs = outputs


def output_text(output: nbformat.NotebookNode) -> str:
    """Everything an output says, its images left out."""
    data = {kind: value for kind, value in output.get("data", {}).items() if not kind.startswith("image/")}
    return "".join(map(str, (output.get("text", ""), output.get("traceback", ""), data)))


def execute(path: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run one notebook on a fresh kernel of this environment and write it back with its outputs."""
    # the kernel is started as "python": make it this environment's
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}},
                   extra_arguments=KERNEL_ARGUMENTS).execute()
    normalize(book)
    texts = [output_text(output) for cell in book.cells if cell.cell_type == "code" for output in cell.outputs]
    named = sorted({path for path in machine_paths() for text in texts if path in text})
    if named:
        raise SystemExit(f"{path.name}: an output names a path of this machine ({', '.join(named)}); not written")
    nbformat.write(book, path)
    return book


def main(argv: list[str]) -> None:
    paths = [Path(arg) for arg in argv] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        book = execute(path)
        cells = [cell for cell in book.cells if cell.cell_type == "code"]
        print(f"{path.name}: {len(cells)} code cells, {sum(len(cell.outputs) for cell in cells)} outputs")


if __name__ == "__main__":
    main(sys.argv[1:])
