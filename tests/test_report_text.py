"""What the renderers print fits a width: explanations wrap at spaces under the item they explain, tables keep
every column and wrap only their last, words; one convention for bytes; short reprs of a program's records."""

import io

import pytest

import jaxcost as jc
from jaxcost.reports.layer import comparison_text, conventions_table, explanation
from jaxcost.reports.performance import notes, notes_text
from jaxcost.reports.text import WIDTH, table, terminal_width, wrap
from tests.test_roofline_roofs import GPU, MEBIBYTE, _measurement

#: An explanation with long items: converts to and from bfloat16 and an unfused bias add.
BFLOAT16_DEPTHWISE = jc.depthwise_conv((1, 56, 56, 64), 3, dtype="bfloat16")


def _words(text: str) -> list[str]:
    return text.split()


def test_wrap_breaks_at_spaces_under_a_hanging_indent_and_cuts_no_word():
    text = "convert     +1,605,632 B   converted copy wrapped_convert f32[1,56,56,64] (802,816 B) written and read back"
    lines = wrap(text, 60, " " * 27).splitlines()
    assert [len(line) <= 60 for line in lines] == [True] * len(lines) and len(lines) > 1
    assert all(line.startswith(" " * 27) and line[27] != " " for line in lines[1:])
    assert _words("\n".join(lines)) == _words(text)
    assert "(802,816 B)" in "\n".join(lines)  # a number keeps its unit
    assert wrap("jit(apply)/Conv/conv_general_dilated is a name", 10) == \
        "jit(apply)/Conv/conv_general_dilated\nis a name"  # longer than the line, yet whole


def test_a_hanging_indent_leaves_room_for_text():
    lines = wrap("word " * 20, 40, " " * 35).splitlines()
    assert all(line.startswith(" " * 10) and line[10] != " " for line in lines[1:])  # 40 - 30 spaces at most


def test_a_table_wraps_only_its_last_left_aligned_column():
    rows = [["fvcore", "1,806,336", "MACs labelled flops, every tap, bias ignored " * 3], ["thop", "12", "short"]]
    whole = table(["convention", "count", "what it counts"], rows, align="lrl")
    assert len(whole.splitlines()) == 4  # no width: nothing wrapped
    lines = table(["convention", "count", "what it counts"], rows, align="lrl", width=70).splitlines()
    assert max(map(len, lines)) <= 70
    assert lines[2].startswith("fvcore      1,806,336  MACs")
    assert lines[3].startswith(" " * 23) and lines[3][23] != " "  # under the column it continues
    assert lines[-1].split() == ["thop", "12", "short"]
    right_aligned = table(["name", "count"], [["a", "1" * 90]], width=50).splitlines()
    assert len(right_aligned) == 3 and right_aligned[-1].split() == ["a", "1" * 90]  # numbers are never cut


def test_the_width_is_the_terminals_only_on_a_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "72")
    terminal = io.StringIO()
    terminal.isatty = lambda: True
    assert terminal_width(terminal) == 72
    assert terminal_width(io.StringIO()) == WIDTH  # a file or a pipe: the same output wherever it was run


@pytest.mark.cpu
def test_a_layers_explanation_fits_the_width_under_its_descriptions():
    comparison = jc.compare(BFLOAT16_DEPTHWISE)
    for width in (WIDTH, 80):
        text = explanation(comparison, indent="   ", width=width)
        lines = text.splitlines()
        assert max(map(len, lines)) <= width
        assert len(lines) > len(comparison.deltas) + 1  # some items took more than one line
        continued = [line for line in lines if line.startswith(" " * 20)]
        assert continued and all(line.startswith(" " * 42) and line[42] != " " for line in continued)
        assert _words(text) == _words(explanation(comparison, indent="   ", width=10**6))
    text = comparison_text(comparison, "device: cpu")
    assert max(map(len, text.splitlines())) <= WIDTH
    assert "(1, 56, 56, 64) -> output (1, 56, 56, 64)" in comparison_text(comparison, width=60)  # shapes whole
    assert max(map(len, conventions_table(BFLOAT16_DEPTHWISE, width=80).splitlines())) <= 80


def test_a_measurements_notes_use_decimal_bytes_as_its_table_does():
    measurement = _measurement(GPU, (2.0**41, 2.0**37), seconds=2.0**-8, working_set_bytes=MEBIBYTE // 2, rotate=4)
    (reason,) = [line for line in notes([measurement]) if "above 100 %" in line]
    assert "MiB" not in reason
    assert "the working set (2.10 MB in 4 input copies) exceeds the last-level cache (1.05 MB)" in reason
    assert "274.88 GB/s" in str(measurement)  # the bandwidth column, 2^38 B/s in the same decimal units


def test_notes_wrap_under_their_label():
    measurement = _measurement(GPU, (2.0**41, 2.0**37), seconds=2.0**-8, rotate=4)
    text = notes_text([measurement], width=72)
    assert max(map(len, text.splitlines())) <= 72
    assert [line[:6] for line in text.splitlines()].count("note: ") == len(notes([measurement]))
    assert _words(text) == _words(" ".join(f"note: {line}" for line in notes([measurement])))
    assert max(map(len, str(measurement).splitlines()[3:])) <= WIDTH  # print(measurement): the lines under its row


@pytest.mark.cpu
def test_a_programs_records_print_one_short_line_each():
    recount = jc.compare(BFLOAT16_DEPTHWISE).compiler.recount
    lines = repr(recount.ops).splitlines()
    assert len(lines) == len(recount.ops) and max(map(len, lines)) < WIDTH
    convolution = max(recount.ops, key=lambda op: op.cost.flops)
    assert repr(convolution) == "OpRecord('ynn_fusion', fusion, flops=3,527,168, bytes_accessed=1,607,936)"
    assert repr(recount.ops[1:]) == repr(list(recount.ops[1:]))  # a slice is a plain list
    assert "\n" not in repr(recount) and repr(recount).startswith(f"Recount({len(recount.ops)} instructions")
    assert "\n" in repr(recount.xla_ops)


def test_a_table_on_a_narrow_terminal_leaves_out_its_least_kept_columns_and_says_which():
    from jaxcost.reports.text import fitted_table, narrowed, table_width

    headers = ["name", "wide column of detail", "count", "rate"]
    rows = [["conv", "x" * 30, "12", "3.4 G"], ["dense", "y" * 30, "7", "1.2 G"]]
    keep = (9, 1, 8, 5)
    assert fitted_table(headers, rows, "lrrr", keep, None) == table(headers, rows, align="lrrr")  # a file: whole
    assert narrowed(headers, rows, keep, 200) == [0, 1, 2, 3]
    assert narrowed(headers, rows, keep, 30) == [0, 2, 3]  # the detail goes first
    assert narrowed(headers, rows, keep, 10) == [0, 2]  # then the rate; never what is kept 7 and longer
    text = fitted_table(headers, rows, "lrrr", keep, 30)
    body = text.splitlines()[:4]
    assert max(map(len, body)) == table_width(["name", "count", "rate"], [["conv", "12", "3.4 G"],
                                                                          ["dense", "7", "1.2 G"]])
    assert " ".join(text.splitlines()[4:]).startswith("left out to fit 30 columns: wide column of detail (")
    assert max(map(len, text.splitlines())) <= 30
