"""Recount library calls that XLA cannot cost (it reports -1): cuDNN convolutions, cuBLAS gemms, XLA:TPU's
in-place concatenation and its in-bounds promise for gather indices.

Each is recounted from its own attributes: window, padding, dilation, ``dim_labels`` and
``feature_group_count`` for convolutions, ``dot_dimension_numbers`` and the epilogue for gemms,
and the operand and result shapes (a trailing ``u8`` workspace in the result tuple is skipped).
A custom call not listed here stays unknown: it is named, never counted as -1 or 0.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from jaxcost.hlo.convolution import convolution_flops
from jaxcost.hlo.registry import registrar
from jaxcost.hlo.roles import BIAS_ADD
from jaxcost.hlo.text import Instruction, Shape


@dataclass
class LibraryCost:
    """The recounted cost of one library call, with what each flop is for."""

    what: str
    flops_by_role: Counter = field(default_factory=Counter)
    bytes_read: list[int] = field(default_factory=list)
    bytes_written: int = 0
    transcendentals: int = 0
    #: Bytes not said per operand (a kernel's own estimate of all it moves).
    bytes_other: int = 0


Recounter = Callable[[Instruction, list[Shape], dict], LibraryCost | None]
_TARGETS: dict[str, Recounter] = {}


#: ``@target("__cudnn$...", ...)`` registers the recount of custom-call targets (a target registered twice raises).
target = registrar(_TARGETS, "custom-call target")


def result_shape(instruction: Instruction) -> Shape:
    """The call's real result: the first tuple element when the result carries a workspace."""
    return instruction.shape.elements_of[0] if instruction.shape.is_tuple else instruction.shape


def backend_config(instruction: Instruction) -> dict:
    """The instruction's ``backend_config`` JSON as a dict ({} when absent or unreadable)."""
    text = instruction.attribute("backend_config")
    if not text.startswith("{"):
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {}


def _traffic(operands: list[Shape], result: Shape, what: str) -> LibraryCost:
    return LibraryCost(what, Counter(), [shape.bytes for shape in operands], result.bytes)


@target("__cudnn$convForward", "__cudnn$convBiasActivationForward")
def _conv_forward(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    result = result_shape(instruction)
    cost = _traffic(operands, result, "cuDNN forward convolution")
    cost.flops_by_role["convolution"] = convolution_flops(instruction, operands[0], operands[1], result)
    conv_config = config.get("cudnn_conv_backend_config", {})
    elements = result.elements
    if len(operands) > 2:
        cost.flops_by_role[BIAS_ADD] += elements
    activation = conv_config.get("activation_mode", "kNone")
    if activation not in ("kNone", "0", 0):
        cost.flops_by_role["maximum" if activation == "kRelu" else activation.lstrip("k").lower()] += elements
        cost.what += f" + {activation.lstrip('k')}"
    if float(conv_config.get("conv_result_scale", 1)) != 1:
        cost.flops_by_role["multiply"] += elements
    if len(operands) > 3 and float(conv_config.get("side_input_scale", 0)) != 0:
        cost.flops_by_role["add"] += 2 * elements
    return cost


@target("__cudnn$convBackwardInput")
def _conv_backward_input(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    # The attributes describe the forward convolution: its input is this call's result.
    result = result_shape(instruction)
    cost = _traffic(operands, result, "cuDNN convolution gradient w.r.t. input")
    cost.flops_by_role["convolution"] = convolution_flops(instruction, result, operands[1], operands[0])
    return cost


@target("__cudnn$convBackwardFilter")
def _conv_backward_filter(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    # The attributes describe the forward convolution: its kernel is this call's result.
    result = result_shape(instruction)
    cost = _traffic(operands, result, "cuDNN convolution gradient w.r.t. filter")
    cost.flops_by_role["convolution"] = convolution_flops(instruction, operands[0], result, operands[1])
    return cost


_EPILOGUE_ROLES = {"RELU": "maximum", "GELU": "gelu", "SILU": "silu"}


@target("__cublas$gemm", "__cublas$lt$matmul", "__cublas$lt$matmul$f8")
def _gemm(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    result = result_shape(instruction)
    gemm = config.get("gemm_backend_config", {})
    numbers = gemm.get("dot_dimension_numbers", {})
    contracting = [int(d) for d in numbers.get("lhs_contracting_dimensions", [])]
    cost = _traffic(operands, result, "cuBLAS gemm")
    cost.flops_by_role["dot"] = 2 * result.elements * math.prod(operands[0].dims[d] for d in contracting)
    epilogue = str(gemm.get("epilogue", "DEFAULT"))
    if "BIAS" in epilogue:
        cost.flops_by_role[BIAS_ADD] += result.elements
    for name, role in _EPILOGUE_ROLES.items():
        if name in epilogue:
            cost.flops_by_role[role] += result.elements
    if float(gemm.get("beta", 0)) != 0:
        cost.flops_by_role["add"] += result.elements
    if epilogue != "DEFAULT":
        cost.what += f" + epilogue {epilogue}"
    return cost


#: XLA:TPU custom calls that compute and move nothing, and what each is.
_MOVING_NOTHING = {
    "ConcatBitcast": "TPU concatenation in place (a bitcast: nothing moves)",
    "AssumeGatherIndicesInBound": "gather indices assumed in bounds (nothing computed)",
    "GatherScatterIndicesBitpacked": "gather/scatter indices packed inside a fusion (nothing computed)",
    "AllocateBuffer": "buffer allocated (nothing moves)",
    "PrepareAsyncCallStart": "an asynchronous call prepared (nothing moves)",
    "PrepareAsyncCallDone": "an asynchronous call prepared (nothing moves)",
}


@target(*_MOVING_NOTHING)
def _moving_nothing(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    # concatenations of slices that already lie side by side, promises about indices jnp.take clamped, index
    # packing, a scan's uninitialized output buffer, the handshake of a call offloaded to the SparseCore
    return LibraryCost(_MOVING_NOTHING[custom_call_target(instruction)], Counter(), [0] * len(operands), 0)


@target("TopK")
def _top_k(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost:
    # the k largest of each row: XLA:TPU counts a compare of every element with each of the k kept
    values = instruction.shape.elements_of[0] if instruction.shape.is_tuple else instruction.shape
    kept = values.dims[-1] if values.dims else 1
    return LibraryCost(f"top-{kept} of each row", Counter({"compare": operands[0].elements * kept}),
                       [shape.bytes for shape in operands], sum(leaf.bytes for leaf in instruction.shape.leaves()))


@target("tpu_custom_call")
def _pallas_kernel(instruction: Instruction, operands: list[Shape], config: dict) -> LibraryCost | None:
    # a Pallas kernel: XLA:TPU takes the kernel's own cost_estimate (0 without one, where nothing is known)
    estimate = config.get("custom_call_config", {}).get("cost_estimate")
    if not estimate:
        return None
    return LibraryCost("Pallas kernel, by its own cost_estimate", Counter({"pallas kernel": int(estimate["flops"])}),
                       [0] * len(operands), 0, transcendentals=int(estimate.get("transcendentals", 0)),
                       bytes_other=int(estimate.get("bytes_accessed", 0)))


#: Custom calls XLA:TPU's cost analysis costs itself (not -1): their recount is what it counts (0 where the
#: recount knows nothing: a Pallas kernel without an estimate).
COSTED_BY_XLA = frozenset({"AllocateBuffer", "TopK", "tpu_custom_call"})


def custom_call_target(instruction: Instruction) -> str:
    return instruction.attribute("custom_call_target").strip('"')


def library_cost(instruction: Instruction, operands: list[Shape]) -> LibraryCost | None:
    """The recounted cost of a known library call, or None for a call jaxcost does not know."""
    recounter = _TARGETS.get(custom_call_target(instruction))
    if recounter is None:
        return None
    return recounter(instruction, operands, backend_config(instruction))
