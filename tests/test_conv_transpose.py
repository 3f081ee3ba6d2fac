"""Transposed convolutions: typed "transposed", counted as the peers count a ConvTranspose (every input element
times every tap), and the gap to the exact count split into taps on padding and products cropped off the output.

Per dimension, the hand counts go by input element: element ``i`` sits at ``dilation * i + pad_lo`` of the padded,
dilated input, and tap ``t`` of output position ``o`` reads ``stride * o + t``; a (element, tap) pair is a
multiply-add when that position ``o`` exists.
"""

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

import jaxcost as jc


def products_reaching_an_output(spec: jc.Conv) -> int:
    """Brute force, per image and channel pair: (input element, kernel tap) pairs whose output position exists."""
    count = 0
    for element in itertools.product(*(range(n) for n in spec.spatial_shape)):
        for tap in itertools.product(*(range(k) for k in spec.kernel_size)):
            reached = True
            for d in range(spec.rank):
                start, rest = divmod(spec.input_dilation[d] * element[d] + spec.pads[d][0]
                                     - spec.kernel_dilation[d] * tap[d], spec.strides[d])
                reached = reached and not rest and 0 <= start < spec.output_spatial[d]
            count += reached
    return count


class One(nn.Module):
    """A model of one module, so that the module has a row of its own."""

    layer: nn.Module

    def __call__(self, x):
        return self.layer(x)


def test_a_user_built_input_dilated_conv_is_transposed():
    spec = jc.Conv((1, 6, 6, 4), 8, 3, padding=((2, 1), (2, 1)), input_dilation=2)
    assert (spec.transposed, spec.kind) == (True, "transposed")
    assert spec.describe() == "convT3x3 4->8 s1 in-dil2 pad[(2, 1), (2, 1)]"
    assert jc.Conv((1, 6, 6, 4), 8, 3, padding=1, transposed=True).kind == "transposed"  # a stride-1 ConvTranspose
    grouped = jc.Conv((1, 6, 6, 4), 8, 3, padding=((2, 1), (2, 1)), input_dilation=(2, 1), feature_group_count=2)
    assert grouped.describe() == "convT3x3 4->8 g2 s1 in-dil2x1 pad[(2, 1), (2, 1)]"
    assert jc.Conv((1, 6, 6, 4), 8, 3).transposed is False
    with pytest.raises(ValueError, match="transposed"):
        jc.Conv((1, 6, 6, 4), 8, 3, padding=((2, 1), (2, 1)), input_dilation=2, transposed=False)
    with pytest.raises(ValueError, match="transposed"):
        jc.Conv((1, 6, 6, 4), 8, 3, transposed="yes")


@pytest.mark.cpu
def test_flax_conv_transpose_row_by_hand_and_against_xla():
    """ConvTranspose(64, 3x3, strides 2, SAME) on 1x64x64x32: lax pads the twice-dilated input (2, 1); along
    each axis the last element's third tap would land on output 128 (of 0..127), so 64 * 3 - 1 = 191 taps land."""
    report = jc.analyze(One(nn.ConvTranspose(64, (3, 3), strides=(2, 2), padding="SAME", use_bias=False)),
                        jax.ShapeDtypeStruct((1, 64, 64, 32), jnp.float32))
    (row,) = report.layers
    assert row.kind == "transposed" and row.spec.transposed
    cost = jc.analytic(row.spec)
    assert cost.textbook_macs == row.textbook_macs == 64 * 64 * 9 * 32 * 64 == 75_497_472
    assert cost.macs == 191 * 191 * 32 * 64 == 74_713_088
    assert row.flops == 2 * cost.macs == report.compiler.xla_flops == 149_426_176
    assert (cost.padding_macs, cost.cropped_macs) == (0, (192 * 192 - 191 * 191) * 32 * 64) == (0, 784_384)
    assert cost.as_dict()["cropped_macs"] == jc.analytic(row.spec, mode="train").cropped_macs // 3 == 784_384


@pytest.mark.cpu
def test_a_stride_one_flax_conv_transpose_is_transposed_too():
    """Stride 1 leaves no input dilation: the row is still transposed and counted by input positions (VALID, 2x2
    on 5x5: a 6x6 output, every one of the 25 x 4 products lands)."""
    report = jc.analyze(One(nn.ConvTranspose(6, (2, 2), padding="VALID", use_bias=False)),
                        jax.ShapeDtypeStruct((1, 5, 5, 3), jnp.float32))
    (row,) = report.layers
    assert (row.kind, row.spec.input_dilation, row.output_shape) == ("transposed", (1, 1), (1, 6, 6, 6))
    cost = jc.analytic(row.spec)
    assert cost.textbook_macs == cost.macs == 25 * 4 * 3 * 6 and (cost.padding_macs, cost.cropped_macs) == (0, 0)
    assert row.flops == report.compiler.xla_flops == 2 * 1800


@pytest.mark.parametrize("spec, textbook_per_pair, exact_per_pair", [
    # 1-D, stride 3, flax SAME (kernel 4: pads (3, 2)): element 8 sits at 27, its last tap would need output 27 of 27
    (jc.Conv((1, 9, 5), 4, 4, padding=((3, 2),), input_dilation=3, use_bias=False), 9 * 4, 9 * 4 - 1),
    # 2-D, stride 3, flax SAME (kernel 3: pads (2, 2)): the stride is the kernel, no tap of any element is cropped
    (jc.Conv((1, 5, 5, 2), 4, 3, padding=((2, 2), (2, 2)), input_dilation=3), 25 * 9, 25 * 9),
    # 2-D, stride 2, flax VALID (kernel 3: pads (2, 2)): the full transposed output, nothing cropped
    (jc.Conv((2, 8, 8, 16), 8, 3, padding=((2, 2), (2, 2)), input_dilation=2), 64 * 9, 64 * 9),
    # 1-D, stride 2, explicit (0, 0): the first and last elements reach 1 output of their 3 taps, the others 3
    (jc.Conv((1, 5, 2), 3, 3, padding=((0, 0),), input_dilation=2), 5 * 3, 1 + 3 * 3 + 1),
    # 1-D, dilated and strided: element i (at 2i + 1) meets output i at its middle tap only
    (jc.Conv((1, 4, 1), 1, 3, strides=2, padding=((1, 1),), input_dilation=2), 4 * 3, 4),
])
def test_transposed_gap_is_cropped_products_by_hand(spec, textbook_per_pair, exact_per_pair):
    cost = jc.analytic(spec)
    pairs = spec.batch * spec.in_features // spec.feature_group_count * spec.features
    assert cost.textbook_macs == pairs * textbook_per_pair
    assert cost.macs == pairs * exact_per_pair == pairs * products_reaching_an_output(spec)
    assert cost.cropped_macs == pairs * (textbook_per_pair - exact_per_pair)
    assert cost.padding_macs == 0


@pytest.mark.parametrize("spec, padding_per_pair", [
    # SAME 3x3 at 56x56: along each axis 3 * 56 taps, 166 on real inputs
    (jc.standard_conv((1, 56, 56, 64), 128, 3, use_bias=False), 168 * 168 - 166 * 166),
    # 1-D, stride 2, explicit (1, 2): 14 padded positions, 6 windows [2o, 2o + 2]; padding at 0, 12 and 13: the
    # first window covers 0, the last 12, none reaches 13
    (jc.Conv((1, 11, 3), 2, 3, strides=2, padding=((1, 2),)), 2),
    (jc.Conv((2, 9, 7, 4), 4, 3, strides=3, padding="VALID"), 0),
])
def test_ordinary_conv_gap_is_padding_by_hand(spec, padding_per_pair):
    cost = jc.analytic(spec)
    pairs = spec.batch * spec.in_features // spec.feature_group_count * spec.features
    assert (cost.padding_macs, cost.cropped_macs) == (pairs * padding_per_pair, 0)
    assert cost.textbook_macs - cost.macs == cost.padding_macs + cost.cropped_macs
    assert jc.analytic(jc.dense((4, 8), 16)).padding_macs == jc.analytic(jc.dense((4, 8), 16)).cropped_macs == 0


def test_transposed_gap_is_never_negative():
    """Each (input element, tap) pair reaches at most one output position, so the exact count never exceeds the
    input-based textbook count."""
    for size, kernel, stride, dilation, lo, hi in itertools.product((1, 4, 5), (1, 2, 3), (1, 2), (2, 3), (0, 2),
                                                                    (0, 3)):
        try:
            spec = jc.Conv((1, size, 1), 1, kernel, strides=stride, padding=((lo, hi),), input_dilation=dilation)
        except ValueError:
            continue
        cost = jc.analytic(spec)
        assert cost.cropped_macs == size * kernel - products_reaching_an_output(spec) >= 0, spec


def test_peer_conventions_for_a_transposed_conv():
    """fvcore, ptflops, torch and calflops count input positions for a ConvTranspose; thop and torchinfo count
    output positions (holes included); bias adds are one per output element."""
    spec = jc.Conv((2, 8, 8, 16), 8, 3, padding=((2, 1), (2, 1)), input_dilation=2)  # SAME, stride 2: 16x16 out
    by_input, by_output, bias_adds = 2 * 64 * 9 * 16 * 8, 2 * 256 * 9 * 16 * 8, 2 * 256 * 8
    assert jc.analytic(spec).textbook_macs == by_input
    assert jc.conventions(spec) | {"xla": None} == {
        "xla": None,
        "textbook": 2 * by_input + bias_adds,
        "fvcore": by_input,
        "thop": by_output,
        "ptflops": (by_input + bias_adds) // 2,
        "ptflops-aten": by_input + bias_adds,
        "torchinfo": by_output + bias_adds,
        "torch": 2 * by_input,
        "calflops": 2 * by_input + bias_adds,
    }
    stride_one = jc.Conv((1, 6, 6, 4), 8, 3, padding=2, transposed=True)  # VALID ConvTranspose, stride 1: 8x8 out
    assert jc.conventions(stride_one)["fvcore"] == 36 * 9 * 4 * 8 == jc.analytic(stride_one).macs
    assert jc.conventions(stride_one)["thop"] == 64 * 9 * 4 * 8


class Upsampler(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.ConvTranspose(8, (3, 3), strides=(2, 2), padding="SAME")(nn.Conv(4, (3, 3))(x))


@pytest.mark.cpu
def test_a_model_row_of_a_conv_transpose_is_typed_and_its_gap_named():
    from jaxcost.models.analysis import analyze
    from jaxcost.reports.model import summary

    report = analyze(Upsampler(), jax.ShapeDtypeStruct((1, 8, 8, 3), jnp.float32))
    rows = {row.path: row for row in report.rows}
    transposed, conv = rows["ConvTranspose_0"], rows["Conv_0"]
    assert transposed.kind == "transposed" and transposed.textbook_macs == 8 * 8 * 9 * 4 * 8  # inputs x taps
    assert conv.cropped_macs == 0 and transposed.cropped_macs == transposed.textbook_macs - transposed.macs > 0
    padding = conv.textbook_macs - conv.macs
    assert (f"no compiler performs: {padding:,} on padding, {transposed.cropped_macs:,} that a transposed conv's "
            "padding crops off") in summary(report)
