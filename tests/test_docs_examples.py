"""Every example in the README, the documentation and examples/README.md runs, and prints what its page shows
(the collector is ``tests/docs_examples.py``; its markers are explained there and on docs/development.md)."""

from __future__ import annotations

import textwrap

import pytest

from tests.docs_examples import ROOT, blocks, console_commands, output_matches, pages, run_page

PAGES = {page.relative_to(ROOT).as_posix(): page for page in pages()}


@pytest.fixture(scope="session")
def page_runs(request):
    """The selected pages, run one after another (each in processes of its own, which use every core)."""
    selected = [item.callspec.params["page"] for item in request.session.items
                if item.originalname == "test_page_examples" and hasattr(item, "callspec")]
    return {name: run_page(PAGES[name]) for name in selected}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_examples(page, page_runs):
    run = page_runs[page]
    assert not run.failures, "\n\n".join(run.failures)


def test_the_examples_run_fast(page_runs):
    """The examples are kept small: every page's together take about 80 s on two cores (the bound leaves room for a
    busy machine)."""
    if len(page_runs) < len(PAGES):
        pytest.skip("not every page ran")
    seconds = {name: round(run.seconds, 1) for name, run in page_runs.items()}
    assert sum(seconds.values()) < 120, seconds


def _page(tmp_path, text):
    path = tmp_path / "page.md"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_collector_catches_a_block_that_raises(tmp_path):
    page = _page(tmp_path, """\
        ```python
        total = 1 + 1
        ```

        ```python
        assert total == 3, "broken on purpose"
        ```
        """)
    run = run_page(page, root=tmp_path)
    assert run.ran == 2 and len(run.failures) == 1
    assert "page.md:5: raised" in run.failures[0] and "broken on purpose" in run.failures[0]
    assert f'File "{page}", line 6' in run.failures[0]  # the line of the page


def test_the_collector_catches_output_that_changed(tmp_path):
    page = _page(tmp_path, """\
        ```python
        print("jaxcost", 6 * 7)
        ```

        ```text
        jaxcost 41
        ```
        """)
    run = run_page(page, root=tmp_path)
    assert len(run.failures) == 1 and "jaxcost 42" in run.failures[0] and "jaxcost 41" in run.failures[0]


def test_the_collector_catches_a_command_that_fails_or_prints_otherwise(tmp_path):
    failing = _page(tmp_path, """\
        ```console
        $ echo fine
        fine
        $ false
        ```
        """)
    assert "exit status 1 from\nfalse" in run_page(failing, root=tmp_path).failures[0]
    changed = _page(tmp_path, """\
        ```bash
        printf 'a\\nb\\n'
        ```
        ```text
        a
        c
        ```
        """)
    assert "but the page shows" in run_page(changed, root=tmp_path).failures[0]


def test_markers_skip_a_block_write_a_file_and_leave_machine_dependent_output_alone(tmp_path):
    page = _page(tmp_path, """\
        <!-- file: numbers.txt -->
        ```text
        1 2 3
        ```

        <!-- skip: needs a SLURM cluster -->
        ```bash
        sbatch sweep.sh
        ```

        <!-- output: machine-dependent -->
        ```console
        $ cat numbers.txt; date
        1 2 3
        Thursday
        ```

        ```python
        print(open("numbers.txt").read().split())
        print("seconds: 0.123")
        print("end")
        ```

        ```text
        ['1', ...]
        ...
        end
        ```
        """)
    run = run_page(page, root=tmp_path)
    assert run.failures == [] and run.ran == 2
    assert run.skipped == ["page.md:7: needs a SLURM cluster"]


def test_what_a_block_is_shown_to_print():
    found = blocks("```python\nx = 1\n```\n<!-- output: machine-dependent -->\n```text\n1\n```\n\n"
                   "```python\ny = 2\n```\nprose\n```text\n2\n```\n")
    assert [(block.language, block.expected, block.compared) for block in found] == [
        ("python", "1\n", False), ("text", None, False), ("python", None, True), ("text", None, True)]
    assert console_commands("$ a \\\n  --b\nout\n$ c\n") == [("a \\\n  --b", "out"), ("c", "")]
    assert output_matches("x ... z\n...\nend", "x y z\n1\n2\nend   \n")
    assert not output_matches("x\nend", "x\nmore\nend")
