"""The registries of per-key rules refuse what would silently go wrong: a key filed twice (the first function
overwritten), and an opcode rule that ``Analyzer.cost`` would never call (a free or elementwise opcode)."""

import pytest

from jaxcost.hlo import engine, library_calls
from jaxcost.hlo.registry import registrar
from jaxcost.hlo.rules import registered_opcodes, rule


def _first(*args):
    return None


def _second(*args):
    return None


@pytest.fixture
def opcode_rules():
    """The opcode rules' table, restored after the test whatever it registered."""
    saved = dict(engine._RULES)
    yield engine._RULES
    engine._RULES.clear()
    engine._RULES.update(saved)


def test_a_key_registered_twice_raises_naming_both_functions():
    table = {}
    register = registrar(table, "thing")
    register("a")(_first)
    with pytest.raises(ValueError, match=r"thing 'a' registered twice: by .*\._first, then by .*\._second"):
        register("b", "a")(_second)
    assert table == {"a": _first}  # nothing of the refused registration filed


def test_one_key_twice_in_one_registration_raises():
    with pytest.raises(ValueError, match="registered twice"):
        registrar({}, "thing")("a", "a")(_first)


def test_a_key_never_looked_up_raises_with_the_reason():
    register = registrar({}, "thing", lambda key: "it is shadowed" if key == "hidden" else None)
    with pytest.raises(ValueError, match=r"thing 'hidden' \(.*\._first\) would never run: it is shadowed"):
        register("hidden")(_first)


def test_a_second_rule_for_an_opcode_raises(opcode_rules):
    with pytest.raises(ValueError, match=r"rule for opcode 'dot' registered twice: by jaxcost\.hlo\.rules\._dot"):
        rule("dot")(_second)
    rule("a-throwaway-opcode")(_first)
    with pytest.raises(ValueError, match="rule for opcode 'a-throwaway-opcode' registered twice"):
        rule("a-throwaway-opcode")(_second)


@pytest.mark.parametrize(("opcode", "opcode_class"), [("bitcast", "FREE"), ("add", "ELEMENTWISE"),
                                                      ("exponential", "ELEMENTWISE")])
def test_a_rule_for_a_free_or_elementwise_opcode_raises(opcode_rules, opcode, opcode_class):
    with pytest.raises(ValueError, match=rf"rule for opcode '{opcode}' .* would never run: it is in "
                                         rf"opcodes\.{opcode_class}"):
        rule(opcode)(_first)
    assert opcode not in registered_opcodes()


def test_a_custom_call_target_registered_twice_raises():
    saved = dict(library_calls._TARGETS)
    try:
        with pytest.raises(ValueError, match=r"custom-call target 'TopK' registered twice"):
            library_calls.target("TopK")(_first)
    finally:
        library_calls._TARGETS.clear()
        library_calls._TARGETS.update(saved)
