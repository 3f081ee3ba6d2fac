"""The notebooks run top to bottom on a fresh kernel; any failing cell fails the suite. Each is committed with the
outputs of a run (`notebooks/execute.py` writes them), so it shows its tables and plots where it is read."""

import json
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
RERUN = "run `.venv/bin/python notebooks/execute.py` and commit the notebooks it writes"
#: A timestamp in an output: ISO 8601 (nbclient's cell metadata) or a native log line's (glog: E0000 00:00:17…).
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d|\b[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6}")
#: What libtpu writes to stderr when it looks for a TPU on a machine without one.
LIBTPU_PROBE = re.compile(r"TPU_WORKER_HOSTNAMES|Source Location Trace|Failed to find host bounds|InitGoogle")


def test_there_are_four_notebooks():
    assert {path.stem for path in NOTEBOOKS} == {"formulas_vs_compiler", "utilization_study", "model_study",
                                                 "where_the_time_goes"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch, tmp_path):
    # the kernel is started as "python": make it this environment's
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)  # else the kernel shows no native stderr, as under pytest
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [output for cell in book.cells if cell.cell_type == "code" for output in cell.outputs
              if output.output_type == "error"]
    assert errors == []
    # the kernel shows what native libraries write to stderr: libtpu (started beside the tests' other processes,
    # tests/conftest.py) looks for a TPU there, and a notebook starts JAX without it (jaxcost.start_quietly)
    probes = [output.text for cell in book.cells if cell.cell_type == "code" for output in cell.outputs
              if output.output_type == "stream" and LIBTPU_PROBE.search(output.text)]
    assert probes == []


def _output_text(output) -> str:
    data = {kind: value for kind, value in output.get("data", {}).items() if not kind.startswith("image/")}
    return "".join(map(str, (output.get("text", ""), output.get("traceback", ""), data)))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_is_committed_with_its_outputs(path):
    """Every code cell shows what it printed or drew, from one run in order, with no error, no timestamp and no
    path of the machine that ran it."""
    book = nbformat.read(path, as_version=4)
    cells = [cell for cell in book.cells if cell.cell_type == "code"]
    assert cells
    assert [index for index, cell in enumerate(cells) if not cell.outputs] == [], f"cells without outputs: {RERUN}"
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1)), f"not one run: {RERUN}"
    outputs = [output for cell in cells for output in cell.outputs]
    assert [output.output_type for output in outputs if output.output_type == "error"] == []
    assert [cell.metadata["execution"] for cell in cells if "execution" in cell.metadata] == [], \
        f"execution timestamps: {RERUN}"
    text = "".join(map(_output_text, outputs))
    assert TIMESTAMP.findall(text) == []
    machine = {str(ROOT.resolve()), sys.prefix, str(Path.home()), tempfile.gettempdir()}
    assert [place for place in machine if len(place) > 1 and place in text] == []


def test_the_gpu_study_is_committed_with_its_plots_and_device_named():
    book = nbformat.read(ROOT / "notebooks" / "utilization_study.ipynb", as_version=4)
    outputs = [output for cell in book.cells if cell.cell_type == "code" for output in cell.outputs]
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 2
    text = "".join(output.get("text", "") for output in outputs)
    assert "NVIDIA H200: 72 timed layers" in text and "compute-bound" in text and "memory-bound" in text


def test_the_gpu_study_says_how_thin_its_curves_are():
    """The note beside the time-against-batch curves states the batch points and how many curves are not monotonic
    in batch, as the committed results have them: measuring more points makes this fail until the note is updated."""
    results = ROOT / "bench" / "results" / "nvidia-h200"
    records = [json.loads(line) for kind in ("conv", "group", "depthwise", "dense")
               for line in (results / f"study_{kind}.jsonl").read_text().splitlines()]
    batches = sorted({r["config"]["batch"] for r in records})
    curves = {}
    for r in records:
        curves.setdefault((r["kind"], r["config"]["channels"], r["config"]["dtype"]), []).append(
            (r["config"]["batch"], r["seconds_median"]))
    drops = [key for key, points in curves.items()
             if any(b[1] < a[1] for a, b in zip(sorted(points), sorted(points)[1:]))]
    book = nbformat.read(ROOT / "notebooks" / "utilization_study.ipynb", as_version=4)
    notes = [cell.source for cell in book.cells if cell.cell_type == "markdown" and "How thin" in cell.source]
    assert len(notes) == 1
    note = " ".join(notes[0].split())
    assert f"batch {', '.join(map(str, batches[:-1]))} and {batches[-1]}" in note
    assert f"{len(drops)} of the {len(curves)} curves" in note and "not monotonic in batch" in note
    assert "NVIDIA H200" in note and "More batch points are needed" in note
    text = "".join(output.get("text", "") for cell in book.cells if cell.cell_type == "code" for output in cell.outputs)
    assert f"{len(drops)} of {len(curves)} curves not monotonic in batch" in text


def test_the_profile_study_is_committed_with_its_tables_and_plots():
    """Both models' profiles are shown (the rows with their time columns, the step's time lines, time share against
    FLOPs share by kind) with a roofline each, and the text says the times are this CPU's and how to run on a GPU."""
    book = nbformat.read(ROOT / "notebooks" / "where_the_time_goes.ipynb", as_version=4)
    outputs = [output for cell in book.cells if cell.cell_type == "code" for output in cell.outputs]
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 2
    text = "".join(output.get("text", "") for output in outputs)
    assert text.count("time per step:") == 2 and text.count("(device idle)") == 2
    assert text.count("time share  time / FLOPs") == 2 and "stage4_block0" in text and "tokens" in text
    assert "resnet50 train" in text and "gpt2_small forward" in text and "trace_ratio" in text
    notes = " ".join(" ".join(cell.source.split()) for cell in book.cells if cell.cell_type == "markdown")
    assert "this CPU's" in notes and "trace_ratio" in notes and "On a GPU" in notes
