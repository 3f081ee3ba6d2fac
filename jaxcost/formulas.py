"""Analytic costs of a layer spec, and the numbers other tools print for it. Pure Python ints.

Conventions (see the README for the full table):

* ``textbook_macs`` counts every kernel tap at every output position, taps on padding included:
  ``N * P * T * (Cin / g) * Cout`` for a convolution, ``rows * Cin * Cout`` for a dense layer. A transposed
  convolution (``Conv.transposed``) is counted as fvcore, ptflops, torch and calflops count a ConvTranspose:
  every input element times every tap, ``N * prod(input spatial) * T * (Cin / g) * Cout``; the taps on the
  holes its input dilation leaves are no products and are not counted.
* ``macs`` counts only taps that land on real input elements: taps on padding or on the holes that
  input dilation leaves are not multiply-adds. This is what XLA's cost analysis counts.
* ``textbook_macs - macs`` is ``padding_macs`` (a convolution's taps on its zero padding) plus
  ``cropped_macs`` (a transposed convolution's products that reach no output position).
* ``flops = 2 * macs`` plus one flop per bias add (one per output element).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args, overload

from jaxcost.reports.text import format_bytes, format_count, format_si, table
from jaxcost.specs import Conv, Dense, Spec, describe_value


@dataclass(frozen=True)
class Cost:
    """Exact analytic cost of one layer. Every count is an int; bytes are at the spec's dtype."""

    params: int
    macs: int
    bias_adds: int
    textbook_macs: int
    #: Products of an input element and a tap that the textbook count of a transposed convolution includes
    #: and no output uses: those its padding crops off the output's border (and, with strides in the dilated
    #: form, those between output positions). Zero for any other layer.
    cropped_macs: int
    bytes_input: int
    bytes_weights: int
    bytes_output: int

    @property
    def flops(self) -> int:
        """2 per exact multiply-add, plus 1 per bias add."""
        return 2 * self.macs + self.bias_adds

    @property
    def textbook_flops(self) -> int:
        """2 per textbook multiply-add (padding taps included), plus 1 per bias add."""
        return 2 * self.textbook_macs + self.bias_adds

    @property
    def padding_macs(self) -> int:
        """Multiply-adds the textbook formula counts on zero padding: ``textbook_macs - macs - cropped_macs``.
        Zero for a transposed convolution, whose textbook count multiplies real input elements only."""
        return self.textbook_macs - self.macs - self.cropped_macs

    @property
    def bytes_accessed(self) -> int:
        """Minimal memory traffic: read input and weights (bias included) once, write output once."""
        return self.bytes_input + self.bytes_weights + self.bytes_output

    @property
    def bytes_model(self) -> int:
        """Size of the parameters at the spec's dtype (the model size on disk or in memory)."""
        return self.bytes_weights

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, flops per byte of minimal traffic."""
        return self.flops / self.bytes_accessed

    def as_dict(self) -> dict[str, float]:
        names = ("params", "macs", "flops", "bias_adds", "textbook_macs", "textbook_flops", "padding_macs",
                 "cropped_macs", "bytes_input", "bytes_weights", "bytes_output", "bytes_accessed", "bytes_model",
                 "intensity")
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        return (f"Cost(flops={self.flops:,}, macs={self.macs:,}, params={self.params:,}, "
                f"bytes_accessed={self.bytes_accessed:,})")

    def __str__(self) -> str:
        return _cost_table([
            ("params", self.params, format_si(self.params, "")),
            ("MACs (exact taps)", self.macs, format_si(self.macs, "MACs")),
            ("MACs (textbook)", self.textbook_macs, format_si(self.textbook_macs, "MACs")),
            ("bias adds", self.bias_adds, format_count(self.bias_adds)),
            ("FLOPs", self.flops, format_count(self.flops)),
            ("FLOPs (textbook)", self.textbook_flops, format_count(self.textbook_flops)),
            ("bytes input", self.bytes_input, format_bytes(self.bytes_input)),
            ("bytes weights", self.bytes_weights, format_bytes(self.bytes_weights)),
            ("bytes output", self.bytes_output, format_bytes(self.bytes_output)),
            ("bytes accessed", self.bytes_accessed, format_bytes(self.bytes_accessed)),
        ], self.intensity)


def _cost_table(rows: list[tuple[str, int, str]], intensity: float) -> str:
    """Exact counts beside human units, then the intensity."""
    lines = [[name, f"{value:,}", human] for name, value, human in rows]
    lines.append(["intensity", f"{intensity:.2f}", "FLOPs/byte"])
    return table(["", "exact", "units"], lines)


@dataclass(frozen=True)
class TrainingCost:
    """Exact analytic cost of one training step of a layer: forward, then gradients w.r.t. input and params.

    Each gradient convolution pairs the same (output position, tap, input element) triples as the
    forward pass, so each costs the forward's exact multiply-adds; the bias gradient sums the output
    gradient over batch and positions (one add fewer than elements, per feature).
    """

    forward: Cost
    grad_bias_adds: int

    @property
    def params(self) -> int:
        return self.forward.params

    @property
    def macs(self) -> int:
        """Multiply-adds of forward, grad-input and grad-weight passes."""
        return 3 * self.forward.macs

    @property
    def textbook_macs(self) -> int:
        return 3 * self.forward.textbook_macs

    @property
    def padding_macs(self) -> int:
        """Taps on padding the textbook count of the three passes includes (three times the forward's)."""
        return 3 * self.forward.padding_macs

    @property
    def cropped_macs(self) -> int:
        """Products cropped off the output the textbook count of the three passes includes."""
        return 3 * self.forward.cropped_macs

    @property
    def flops_forward(self) -> int:
        return self.forward.flops

    @property
    def flops_grad_input(self) -> int:
        return 2 * self.forward.macs

    @property
    def flops_grad_weights(self) -> int:
        return 2 * self.forward.macs

    @property
    def flops(self) -> int:
        return self.flops_forward + self.flops_grad_input + self.flops_grad_weights + self.grad_bias_adds

    @property
    def rule_of_thumb_flops(self) -> int:
        """The usual estimate, three times the forward flops."""
        return 3 * self.forward.flops

    @property
    def bytes_accessed(self) -> int:
        """Read input, params and output gradient; write output, input gradient and param gradients."""
        return 2 * self.forward.bytes_accessed

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes_accessed

    def as_dict(self) -> dict[str, float]:
        names = ("params", "macs", "textbook_macs", "padding_macs", "cropped_macs", "flops_forward",
                 "flops_grad_input", "flops_grad_weights", "grad_bias_adds", "flops", "rule_of_thumb_flops",
                 "bytes_accessed", "intensity")
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        return f"TrainingCost(flops={self.flops:,}, macs={self.macs:,}, params={self.params:,})"

    def __str__(self) -> str:
        return _cost_table([
            ("params", self.params, format_si(self.params, "")),
            ("MACs (3 passes)", self.macs, format_si(self.macs, "MACs")),
            ("FLOPs forward", self.flops_forward, format_count(self.flops_forward)),
            ("FLOPs grad input", self.flops_grad_input, format_count(self.flops_grad_input)),
            ("FLOPs grad weights", self.flops_grad_weights, format_count(self.flops_grad_weights)),
            ("FLOPs grad bias", self.grad_bias_adds, format_count(self.grad_bias_adds)),
            ("FLOPs", self.flops, format_count(self.flops)),
            ("3x forward (rule)", self.rule_of_thumb_flops, format_count(self.rule_of_thumb_flops)),
            ("bytes accessed", self.bytes_accessed, format_bytes(self.bytes_accessed)),
        ], self.intensity)


#: What a cost counts: one forward pass, or a training step (the forward pass and the gradients of input and weights).
Mode = Literal["forward", "train"]
MODES: tuple[Mode, ...] = get_args(Mode)


def check_mode(mode: str) -> Mode:
    """``mode`` itself, typed as a ``Mode``; ValueError for any other string."""
    for known in MODES:
        if mode == known:
            return known
    raise ValueError(f"mode: must be 'forward' or 'train', got {mode!r}")


def valid_taps(size: int, kernel: int, stride: int, pad_lo: int, size_out: int,
               input_dilation: int = 1, kernel_dilation: int = 1) -> int:
    """(output position, kernel tap) pairs of one spatial dimension whose tap lands on a real input element."""
    count = 0
    for tap in range(kernel):
        offset = tap * kernel_dilation - pad_lo
        for position in range(size_out):
            index = position * stride + offset
            if index % input_dilation == 0 and 0 <= index // input_dilation < size:
                count += 1
    return count


def conv_taps(spec: Conv) -> int:
    """Sum over output positions of the kernel taps that land inside the input, for one image."""
    return math.prod(
        valid_taps(size, kernel, stride, lo, size_out, in_dil, k_dil)
        for size, kernel, stride, (lo, _), size_out, in_dil, k_dil in zip(
            spec.spatial_shape, spec.kernel_size, spec.strides, spec.pads, spec.output_spatial,
            spec.input_dilation, spec.kernel_dilation))


def output_tap_macs(spec: Conv) -> int:
    """Every kernel tap at every output position, taps on padding and on input-dilation holes included:
    ``N * P * T * (Cin / g) * Cout``. The textbook count of a convolution that is not transposed, and what
    thop and torchinfo count for a transposed one."""
    per_output_channel = spec.in_features // spec.feature_group_count * spec.features
    return spec.batch * math.prod(spec.output_spatial) * math.prod(spec.kernel_size) * per_output_channel


@overload
def analytic(spec: Spec, mode: Literal["forward"] = "forward") -> Cost: ...


@overload
def analytic(spec: Spec, mode: Literal["train"]) -> TrainingCost: ...


@overload
def analytic(spec: Spec, mode: Mode) -> Cost | TrainingCost: ...


def analytic(spec: Spec, mode: Mode = "forward") -> Cost | TrainingCost:
    """Exact analytic cost of a layer spec: its forward pass, or with ``mode="train"`` a training step."""
    if not isinstance(spec, (Conv, Dense)):
        raise ValueError(f"spec: analytic() takes a jaxcost.Conv or jaxcost.Dense, got {describe_value(spec)}; "
                         "for a function use jaxcost.compare(function, *args), for a model jaxcost.analyze(model, x)")
    if check_mode(mode) == "train":
        forward = analytic(spec)
        return TrainingCost(forward, forward.bias_adds - (spec.features if spec.use_bias else 0))
    itemsize = spec.itemsize
    bytes_input = math.prod(spec.input_shape) * itemsize
    bytes_output = math.prod(spec.output_shape) * itemsize
    bias = spec.features if spec.use_bias else 0
    if isinstance(spec, Dense):
        macs = spec.rows * spec.in_features * spec.features
        params = spec.in_features * spec.features + bias
        return Cost(params=params, macs=macs, bias_adds=spec.rows * bias, textbook_macs=macs, cropped_macs=0,
                    bytes_input=bytes_input, bytes_weights=params * itemsize, bytes_output=bytes_output)
    per_output_channel = spec.in_features // spec.feature_group_count * spec.features
    params = math.prod(spec.kernel_size) * per_output_channel + bias
    macs = spec.batch * per_output_channel * conv_taps(spec)
    if spec.transposed:  # every input element times every tap: at least the exact count (one position per pair)
        textbook_macs = spec.batch * math.prod(spec.spatial_shape) * math.prod(spec.kernel_size) * per_output_channel
    else:
        textbook_macs = output_tap_macs(spec)
    return Cost(
        params=params,
        macs=macs,
        bias_adds=spec.batch * math.prod(spec.output_spatial) * bias,
        textbook_macs=textbook_macs,
        cropped_macs=textbook_macs - macs if spec.transposed else 0,
        bytes_input=bytes_input,
        bytes_weights=params * itemsize,
        bytes_output=bytes_output,
    )


def attention_macs(batch: int, heads: int, queries: int, keys: int, head_features: int) -> int:
    """Multiply-adds of scaled dot-product attention's two products, per call: the scores QKᵀ
    (``queries × keys × head_features`` per head) and the weighted sum of the values (as many). A mask
    removes none of them: every score is computed, then masked. A training step costs three times as many
    (the gradients of both operands of both products)."""
    return 2 * batch * heads * queries * keys * head_features


def einsum_macs(equation: str, *shapes: tuple[int, ...]) -> int:
    """Multiply-adds of a two-operand contraction ``"bf,fo->bo"``: one per combination of the values of all
    its indices (the output's and the summed ones). ``...`` and broadcasting are not handled (ValueError)."""
    inputs, arrow, _ = equation.replace(" ", "").partition("->")
    operands = inputs.split(",")
    if not arrow or len(operands) != len(shapes) or "." in inputs:
        raise ValueError(f"equation: {equation!r} must contract {len(shapes)} operands with explicit indices")
    sizes: dict[str, int] = {}
    for letters, shape in zip(operands, shapes):
        if len(letters) != len(shape):
            raise ValueError(f"equation: {letters!r} does not index a shape of rank {len(shape)}")
        for letter, size in zip(letters, shape):
            if sizes.setdefault(letter, size) != size:
                raise ValueError(f"equation: index {letter!r} is {sizes[letter]} and {size}")
    return math.prod(sizes.values())


#: What each convention counts, and where the rule comes from (read from each tool's source and checked
#: against its output on batched and N-d layers: fvcore 0.1.5, thop 0.1.1, ptflops 0.7.5, torchinfo 1.8.0,
#: torch 2.13, calflops 0.3.2). "Every tap" is at every output position, but for a transposed conv fvcore,
#: ptflops, torch and calflops count every input element times every tap (a ConvTranspose's textbook count),
#: while thop and torchinfo keep output positions, stride holes included (read from the sources, not checked
#: against the tools' output).
CONVENTION_RULES: dict[str, str] = {
    "xla": "FLOPs: 2 per multiply-add on real input (a conv's taps on padding skipped) + 1 per bias add; "
           "XLA HloCostAnalysis (convolution: valid positions only; dot: 2*M*N*K; add: 1 per element)",
    "textbook": "FLOPs: 2 per multiply-add, every tap of a conv (padding included) + 1 per bias add; "
                "the classic (2*k*k*Cin/g + 1)*Hout*Wout*Cout, with Hin*Win for the taps of a transposed conv",
    "fvcore": "MACs labelled flops, every tap, bias ignored; fvcore jit_handles conv_flop_jit "
              "(batch * prod(w_shape) * prod(out_spatial), prod(in_spatial) when transposed) and "
              "linear_flop_jit (prod(input) * out_features)",
    "thop": "MACs labelled flops, every tap, bias ignored; thop count_convNd "
            "(numel(output) * Cin/g * prod(kernel), a transposed conv too) and count_linear "
            "(in_features * numel(output))",
    "ptflops": "MACs per sample: every tap + 1 per bias add, divided by the input's first dimension and "
               "truncated (the default pytorch backend); ptflops conv_flops_counter_hook (input positions "
               "when transposed), linear_flops_counter_hook, compute_average_flops_cost",
    "ptflops-aten": "MACs, every tap + 1 per bias add, whole batch (backend='aten'); ptflops aten_ops conv_flop "
                    "(input positions when transposed), addmm_flop",
    "torchinfo": "mult-adds: params times output positions for convs (a transposed conv too), times the "
                 "output's first dimension only for Linear; torchinfo LayerInfo.calculate_macs",
    "torch": "FLOPs: 2 per multiply-add, every tap, bias ignored; torch.utils.flop_counter conv_flop_count "
             "(input positions when transposed), mm/addmm 2*M*N*K",
    "calflops": "FLOPs: 2 per multiply-add, every tap, + 1 per bias add for convs, no bias for Linear; "
                "calflops pytorch_ops _conv_flops_compute / _conv_trans_flops_compute (input positions) / "
                "_linear_flops_compute. Not reproduced: for a transposed conv calflops sizes the bias adds by "
                "the forward-conv output formula, and with groups reads Cout/g as Cout",
}


def conventions(spec: Spec) -> dict[str, int]:
    """The number each common tool prints for this layer (see ``CONVENTION_RULES`` for what each counts)."""
    cost = analytic(spec)
    macs = cost.textbook_macs
    params = cost.params
    if isinstance(spec, Dense):
        output_taps = macs
        torchinfo = spec.output_shape[0] * params
        calflops = 2 * macs
    else:
        output_taps = output_tap_macs(spec)  # the textbook count, unless the conv is transposed
        torchinfo = output_taps + cost.bias_adds
        calflops = 2 * macs + cost.bias_adds
    return {
        "xla": cost.flops,
        "textbook": cost.textbook_flops,
        "fvcore": macs,
        "thop": output_taps,
        "ptflops": (macs + cost.bias_adds) // spec.input_shape[0],
        "ptflops-aten": macs + cost.bias_adds,
        "torchinfo": torchinfo,
        "torch": 2 * macs,
        "calflops": calflops,
    }
