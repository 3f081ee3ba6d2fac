"""XLA's opcode vocabulary, as HLO text prints it, and how each opcode is costed.

``XLA_OPCODES`` is XLA's ``HLO_OPCODE_LIST`` (``xla/hlo/ir/hlo_opcode.h``), ``TPU_OPCODES`` what XLA:TPU adds
to it. Every name is in exactly one
class: free (no bytes, no arithmetic), elementwise (one flop per output element) or transcendental (one
transcendental per output element), a registered rule (``rules``), XLA's default (operands read and
output written, no arithmetic) or unknown: an opcode whose cost XLA computes in a way jaxcost has not
reproduced. An unknown opcode in a program is costed by the default and named in the recount's
``unknown``, never silently zero.
"""

from __future__ import annotations

XLA_OPCODES = (
    "abs", "acos", "acosh", "add", "add-dependency", "after-all", "all-gather", "all-gather-done",
    "all-gather-start", "all-reduce", "all-reduce-done", "all-reduce-start", "all-to-all", "and", "asin", "asinh",
    "async-done", "async-start", "async-update", "atan", "atan2", "atanh", "batch-norm-grad", "batch-norm-inference",
    "batch-norm-training", "bitcast", "bitcast-convert", "broadcast", "call", "cbrt", "ceil", "cholesky", "clamp",
    "count-leading-zeros", "collective-broadcast", "collective-permute", "collective-permute-done",
    "collective-permute-start", "collective-reduce", "compare", "complex", "concatenate", "conditional", "constant",
    "convert", "convolution", "copy", "copy-done", "copy-start", "cosine", "cosh", "custom-call", "divide", "domain",
    "dot", "dynamic-reshape", "dynamic-slice", "dynamic-update-slice", "erf", "exponential", "exponential-minus-one",
    "fft", "floor", "fusion", "gather", "get-dimension-size", "get-tuple-element", "imag", "infeed", "iota",
    "is-finite", "log", "log-plus-one", "logistic", "map", "maximum", "minimum", "mulhi", "multiply", "negate", "not",
    "opt-barrier", "or", "outfeed", "pad", "parameter", "partition-id", "popcnt", "power", "ragged-all-to-all",
    "ragged-dot", "real", "recv", "recv-done", "reduce", "reduce-precision", "reduce-scatter", "reduce-window",
    "remainder", "replica-id", "reshape", "reverse", "rng", "rng-bit-generator", "rng-get-and-update-state",
    "round-nearest-afz", "round-nearest-even", "rsqrt", "scaled-dot", "scan", "scatter", "select",
    "select-and-scatter", "send", "send-done", "set-dimension-size", "shift-left", "shift-right-arithmetic",
    "shift-right-logical", "shuffle", "sign", "sine", "sinh", "slice", "sort", "sqrt", "stochastic-convert",
    "subtract", "tan", "tanh", "topk", "transpose", "triangular-solve", "tuple", "while", "xor",
)

#: Opcodes XLA:TPU prints that open XLA's list lacks: an asynchronous slice into on-chip memory (start, done), an
#: asynchronous call (a scatter offloaded to the SparseCore).
TPU_OPCODES = ("slice-start", "slice-done", "call-start", "call-done")
#: Every opcode a program may hold.
ALL_OPCODES = XLA_OPCODES + TPU_OPCODES

#: Counted by HloCostAnalysis as one transcendental per output element. The inverse and hyperbolic functions
#: are too (measured: jaxlib 0.10.2's XLA gives ``acos`` of f32[3] 3 transcendentals and no flops).
TRANSCENDENTAL = frozenset({
    "exponential", "log", "logistic", "power", "sqrt", "cbrt", "rsqrt", "tanh", "sine", "cosine",
    "exponential-minus-one", "log-plus-one", "atan2", "tan", "erf", "acos", "acosh", "asin", "asinh", "atanh",
    "cosh", "sinh",
})
#: Counted as one flop per output element (XLA's elementwise handler).
ELEMENTWISE = frozenset({
    "abs", "acos", "acosh", "add", "and", "asin", "asinh", "atan", "atanh", "bitcast-convert", "ceil", "clamp",
    "compare", "complex", "convert", "cosh", "count-leading-zeros", "divide", "floor", "imag", "is-finite", "maximum",
    "minimum", "multiply", "negate", "not", "or", "popcnt", "real", "reduce-precision", "remainder",
    "round-nearest-afz", "round-nearest-even", "select", "shift-left", "shift-right-arithmetic",
    "shift-right-logical", "sign", "sinh", "stochastic-convert", "subtract", "xor",
}) | TRANSCENDENTAL
#: Touch no memory and do no arithmetic.
FREE = frozenset({"parameter", "constant", "get-tuple-element", "bitcast", "after-all", "add-dependency", "domain"})
#: XLA's default cost: every operand read, the output written, no arithmetic.
DEFAULT = frozenset({
    "all-gather", "all-gather-done", "all-gather-start", "all-reduce-done", "async-done", "async-update",
    "broadcast", "collective-broadcast", "collective-permute", "collective-permute-done",
    "concatenate", "copy", "copy-done", "dynamic-reshape", "get-dimension-size", "iota", "opt-barrier",
    "pad", "partition-id", "recv", "recv-done", "reduce-scatter", "replica-id", "reshape", "reverse", "send",
    "send-done", "set-dimension-size", "slice-done", "call-done",
})
#: Costed by XLA in ways jaxcost does not reproduce: the default is used and the instruction is named unknown.
UNKNOWN = frozenset({
    "batch-norm-grad", "batch-norm-inference", "batch-norm-training", "cholesky", "collective-reduce",
    "mulhi", "ragged-all-to-all", "ragged-dot", "rng-get-and-update-state", "scaled-dot", "scan",
    "shuffle", "topk", "triangular-solve",
})
