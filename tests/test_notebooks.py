"""The notebooks run top to bottom on a fresh kernel; any failing cell fails the suite."""

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
#: Committed with the outputs of a real run (plots of the GPU study); the others are committed stripped.
WITH_OUTPUTS = {"utilization_study"}


def test_there_are_three_notebooks():
    assert {path.stem for path in NOTEBOOKS} == {"formulas_vs_compiler", "utilization_study", "model_study"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch, tmp_path):
    # the kernel is started as "python": make it this environment's
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    book = nbformat.read(path, as_version=4)
    if path.stem not in WITH_OUTPUTS:
        assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code"), "outputs not stripped"
    NotebookClient(book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [output for cell in book.cells if cell.cell_type == "code" for output in cell.outputs
              if output.output_type == "error"]
    assert errors == []


def test_the_gpu_study_is_committed_with_its_plots_and_device_named():
    book = nbformat.read(Path(__file__).parent.parent / "notebooks" / "utilization_study.ipynb", as_version=4)
    outputs = [output for cell in book.cells if cell.cell_type == "code" for output in cell.outputs]
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 2
    text = "".join(output.get("text", "") for output in outputs)
    assert "NVIDIA H200: 72 timed layers" in text and "compute-bound" in text and "memory-bound" in text
