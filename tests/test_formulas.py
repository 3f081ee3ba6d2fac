"""Analytic formulas against hand-worked classic examples, and the peer-tool conventions."""

import pytest

import jaxcost as jc

REF = (1, 56, 56, 64)


def test_standard_conv_by_hand():
    cost = jc.analytic(jc.standard_conv(REF, 128, 3, use_bias=False))
    assert cost.params == 3 * 3 * 64 * 128 == 73_728
    assert cost.textbook_macs == 3 * 3 * 64 * 128 * 56 * 56 == 231_211_008
    # SAME padding: along each axis the 3 taps land on 56 + 55 + 55 = 166 real inputs, not 3 * 56
    assert cost.macs == 64 * 128 * 166 * 166 == 225_738_752
    assert cost.flops == 451_477_504  # what XLA reports on the CPU
    assert cost.bytes_input == 56 * 56 * 64 * 4
    assert cost.bytes_weights == 73_728 * 4
    assert cost.bytes_output == 56 * 56 * 128 * 4
    assert cost.bytes_accessed == 2_703_360
    assert cost.intensity == pytest.approx(451_477_504 / 2_703_360)


def test_standard_conv_with_bias_by_hand():
    cost = jc.analytic(jc.standard_conv(REF, 128, 3))
    assert cost.params == 73_728 + 128
    assert cost.bias_adds == 56 * 56 * 128
    assert cost.flops == 2 * 225_738_752 + 401_408
    # the classic (2 * k * k * Cin + 1) * Hout * Wout * Cout
    assert cost.textbook_flops == (2 * 3 * 3 * 64 + 1) * 56 * 56 * 128 == 462_823_424
    assert cost.bytes_weights == (73_728 + 128) * 4 == cost.bytes_model


def test_group_conv_by_hand():
    cost = jc.analytic(jc.group_conv(REF, 128, 4, 3, use_bias=False))
    assert cost.params == 3 * 3 * (64 // 4) * 128 == 18_432
    assert cost.textbook_macs == 3 * 3 * 16 * 128 * 56 * 56 == 57_802_752
    assert cost.flops == 2 * 16 * 128 * 166 * 166 == 112_869_376


def test_depthwise_conv_by_hand():
    cost = jc.analytic(jc.depthwise_conv(REF, 3, use_bias=False))
    assert cost.params == 3 * 3 * 64 == 576
    assert cost.textbook_macs == 3 * 3 * 64 * 56 * 56 == 1_806_336
    assert cost.flops == 2 * 64 * 166 * 166 == 3_527_168
    multiplied = jc.analytic(jc.depthwise_conv(REF, 3, depth_multiplier=2, use_bias=True))
    assert multiplied.params == 3 * 3 * 128 + 128
    assert multiplied.textbook_macs == 3 * 3 * 128 * 56 * 56


def test_dense_by_hand():
    cost = jc.analytic(jc.dense((8, 2048), 1000))
    assert cost.params == 2048 * 1000 + 1000 == 2_049_000
    assert cost.macs == cost.textbook_macs == 8 * 2048 * 1000
    assert cost.flops == 2 * 16_384_000 + 8 * 1000 == 32_776_000
    assert cost.bytes_accessed == (8 * 2048 + 2_049_000 + 8 * 1000) * 4


def test_valid_strided_conv_counts_every_tap():
    cost = jc.analytic(jc.Conv((2, 33, 29, 24), 40, 3, strides=2, padding="VALID", use_bias=False))
    assert jc.Conv((2, 33, 29, 24), 40, 3, strides=2, padding="VALID").output_shape == (2, 16, 14, 40)
    assert cost.macs == cost.textbook_macs == 2 * 16 * 14 * 9 * 24 * 40
    assert cost.padding_macs == 0


def test_dilated_conv_by_hand():
    # kernel 3 dilated by 2 spans 5; SAME pads 2 each side; taps at offsets -2, 0, +2 see 28, 30, 28 inputs
    cost = jc.analytic(jc.Conv((1, 30, 30, 16), 32, 3, kernel_dilation=2, use_bias=False))
    assert cost.macs == 16 * 32 * 86 * 86
    assert cost.flops == 7_573_504


def test_input_dilation_holes_are_not_multiply_adds():
    # 1-D: input 3 dilated by 2 is [a . b . c]; a 2-tap kernel at stride 1 always covers one real element
    spec = jc.Conv((1, 3, 1), 1, 2, padding=((0, 0),), input_dilation=2, use_bias=False)
    assert spec.output_shape == (1, 4, 1)
    assert jc.analytic(spec).macs == 4
    # input dilation makes it a transposed conv: the textbook count is 3 inputs x 2 taps, not 4 outputs x 2 taps
    assert jc.analytic(spec).textbook_macs == 6
    assert jc.conventions(spec)["thop"] == 8  # thop keeps output positions, holes included


def test_conventions_for_a_conv_with_bias():
    spec = jc.standard_conv(REF, 128, 3)
    textbook_macs, bias_adds = 231_211_008, 401_408
    assert jc.conventions(spec) == {
        "xla": 451_477_504 + bias_adds,
        "textbook": 2 * textbook_macs + bias_adds,
        "fvcore": textbook_macs,
        "thop": textbook_macs,
        "ptflops": textbook_macs + bias_adds,  # per sample: the batch is 1
        "ptflops-aten": textbook_macs + bias_adds,
        "torchinfo": textbook_macs + bias_adds,
        "torch": 2 * textbook_macs,
        "calflops": 2 * textbook_macs + bias_adds,
    }


def test_conventions_for_a_dense_layer_disagree_about_bias():
    conventions = jc.conventions(jc.dense((8, 2048), 1000))
    macs = 8 * 2048 * 1000
    assert conventions["fvcore"] == conventions["thop"] == macs
    assert conventions["ptflops"] == (macs + 8 * 1000) // 8  # per sample (the default backend divides by the batch)
    assert conventions["ptflops-aten"] == macs + 8 * 1000  # one bias add per output element
    assert conventions["torchinfo"] == 8 * (2048 * 1000 + 1000)
    assert conventions["calflops"] == conventions["torch"] == 2 * macs  # no bias for Linear
    assert conventions["xla"] == conventions["textbook"] == 2 * macs + 8 * 1000
    assert set(conventions) == set(jc.CONVENTION_RULES)


def test_conventions_without_bias_agree_on_textbook_macs():
    conventions = jc.conventions(jc.group_conv(REF, 128, 4, 3, use_bias=False))
    assert conventions["fvcore"] == conventions["ptflops"] == conventions["torchinfo"] == 57_802_752
    assert conventions["torch"] == conventions["calflops"] == conventions["textbook"] == 2 * 57_802_752


@pytest.mark.parametrize(("value", "text"), [
    (451_477_504, "451.48 MFLOPs"), (999, "999 FLOPs"), (1_500, "1.50 kFLOPs"), (2.5e9, "2.50 GFLOPs"),
    (3e12, "3.00 TFLOPs"), (4e15, "4.00 PFLOPs"), (5e18, "5.00 EFLOPs"), (6e21, "6.00 ZFLOPs"),
])
def test_counts_are_flops(value, text):
    assert jc.format_count(value) == text


def test_rates_are_flop_per_second_and_bytes_are_bytes():
    assert jc.format_rate(989.4e12) == "989.40 TFLOP/s"
    assert jc.format_rate(1.2e6) == "1.20 MFLOP/s"
    assert jc.format_bytes(2_703_360) == "2.70 MB"
