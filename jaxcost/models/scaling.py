"""A language model's training FLOPs per token, from its compiled training step, beside the 6·N rule
(Kaplan et al. 2020) and the PaLM formula 6·N + 12·L·H·Q·T (Chowdhery et al. 2022, appendix B), with
every difference between the compiled count and 6·N itemized exactly.

6·N charges every parameter 6 FLOPs per token: 2 in the forward product, 2 for the gradient of the
input, 2 for its own gradient. That holds for the weights of products (dense layers, and a token
embedding tied to the logits); it does not for biases (an add and a sum: about 2), normalization scales
and biases (elementwise), or a position embedding (a lookup: none). PaLM adds attention's two
products, which have no parameters. What neither counts is the elementwise work of the step (softmax,
GELU, normalization, residual adds, masks, the embedding gradients), which the compiled step does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jaxcost.reports.text import format_count, table

if TYPE_CHECKING:
    from jaxcost.models.analysis import ModelReport


@dataclass(frozen=True)
class TokenFlops:
    """Training FLOPs of one step, per token: compiled, 6·N, PaLM's, and ``items`` that add up exactly
    (in whole-step FLOPs) to the compiled count minus 6·N·tokens."""

    tokens: int
    params: int
    compiler_flops: int
    palm_attention_flops: int
    items: dict[str, int] = field(default_factory=dict)

    @property
    def per_token(self) -> float:
        return self.compiler_flops / self.tokens

    @property
    def six_n(self) -> int:
        """6·N per token."""
        return 6 * self.params

    @property
    def palm(self) -> int:
        """6·N + 12·L·H·Q·T per token."""
        return self.six_n + self.palm_attention_flops

    def __repr__(self) -> str:
        return (f"TokenFlops(per_token={self.per_token:,.0f}, six_n={self.six_n:,}, palm={self.palm:,}, "
                f"tokens={self.tokens:,})")

    def __str__(self) -> str:
        rows = [["compiled training step", f"{self.per_token:,.1f}", format_count(round(self.per_token))],
                ["6·N", f"{self.six_n:,}", format_count(self.six_n)],
                ["6·N + 12·L·H·Q·T (PaLM)", f"{self.palm:,}", format_count(self.palm)],
                ["", "", ""], ["compiled - 6·N, item by item:", "", ""]]
        rows += [[f"  {name}", f"{flops / self.tokens:,.1f}", format_count(round(flops / self.tokens))]
                 for name, flops in self.items.items()]
        return table(["per token", "FLOPs", ""], rows, align="lrr")


def token_flops(report: ModelReport, tokens: int, layers: int, heads: int, head_features: int,
                context: int) -> TokenFlops:
    """Itemize a training step's report (``analyze(..., mode="train")`` of a language model) per token.

    ``tokens`` is the step's batch times sequence length; ``layers``, ``heads``, ``head_features`` and
    ``context`` are PaLM's L, H, Q and T.
    """
    if report.mode != "train":
        raise ValueError(f"report: per-token training FLOPs need a training step (mode='train'), got {report.mode!r}")
    product_flops = 2 * report.macs  # dense layers, tied logits and attention: three passes each
    bias_flops = report.flops - product_flops
    attention_flops = sum(row.flops for row in report.rows if row.module_type == "MultiHeadDotProductAttention")
    biases = sum(row.spec.features for row in report.rows if row.spec is not None and row.spec.use_bias)
    lookups = sum(row.params for row in report.rows if row.module_type == "Embed" and not row.macs)
    products = report.params - biases - lookups - sum(row.params for row in report.rows if not row.macs
                                                       and row.module_type != "Embed")
    elementwise_params = report.params - biases - lookups - products
    items = {
        "attention's two products (PaLM's 12·L·H·Q·T)": attention_flops,
        "products of the weights beyond 6 per weight": product_flops - attention_flops - 6 * products * tokens,
        "biases: an add and a sum, not 6": bias_flops - 6 * biases * tokens,
        "normalization scales and biases: elementwise, not 6": -6 * elementwise_params * tokens,
        "position embedding: a lookup, not 6": -6 * lookups * tokens,
        "elementwise work (softmax, GELU, norms, adds, masks, embedding gradients)": report.compiler_flops
        - report.flops,
    }
    return TokenFlops(tokens, report.params, report.compiler_flops, 12 * layers * heads * head_features * context,
                      items)
