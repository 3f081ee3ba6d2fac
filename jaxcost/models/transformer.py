"""ViT-B/16 and GPT-2 small as Flax linen modules, laid out as torchvision's ``vit_b_16`` and OpenAI's GPT-2
(pre-LayerNorm blocks of attention and a two-layer MLP), so that their parameter counts are the published ones.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp


class Mlp(nn.Module):
    """Dense to ``hidden``, GELU, Dense back to the input's width."""

    hidden: int
    approximate_gelu: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Any) -> Any:
        y = nn.Dense(self.hidden, dtype=self.dtype, param_dtype=self.dtype, name="fc1")(x)
        y = nn.gelu(y, approximate=self.approximate_gelu)
        return nn.Dense(x.shape[-1], dtype=self.dtype, param_dtype=self.dtype, name="fc2")(y)


class Block(nn.Module):
    """``x + attention(norm(x))``, then ``x + mlp(norm(x))``; causal attention for a language model."""

    heads: int
    hidden: int
    causal: bool = False
    approximate_gelu: bool = False
    epsilon: float = 1e-6
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Any) -> Any:
        mask = nn.make_causal_mask(jnp.ones(x.shape[:-1], jnp.int32)) if self.causal else None
        y = nn.LayerNorm(self.epsilon, dtype=self.dtype, param_dtype=self.dtype, name="norm1")(x)
        y = nn.MultiHeadDotProductAttention(self.heads, dtype=self.dtype, param_dtype=self.dtype,
                                            name="attention")(y, y, mask=mask)
        x = x + y
        y = nn.LayerNorm(self.epsilon, dtype=self.dtype, param_dtype=self.dtype, name="norm2")(x)
        return x + Mlp(self.hidden, self.approximate_gelu, self.dtype, name="mlp")(y)


class ViT(nn.Module):
    """A Vision Transformer: patches embedded by a strided convolution, a class token, learned positions,
    ``depth`` blocks, a final LayerNorm and a classifier on the class token. Defaults: ViT-B/16."""

    patch: int = 16
    width: int = 768
    depth: int = 12
    heads: int = 12
    hidden: int = 3072
    num_classes: int = 1000
    dtype: Any = jnp.float32
    #: Recompute each block's activations in the backward pass (``nn.remat``) instead of keeping them.
    remat: bool = False

    @nn.compact
    def __call__(self, x: Any) -> Any:
        x = nn.Conv(self.width, (self.patch, self.patch), (self.patch, self.patch), "VALID", dtype=self.dtype,
                    param_dtype=self.dtype, name="patches")(x)
        x = x.reshape(x.shape[0], -1, self.width)
        token = self.param("class_token", nn.initializers.zeros, (1, 1, self.width), self.dtype)
        x = jnp.concatenate([jnp.broadcast_to(token, (x.shape[0], 1, self.width)), x], axis=1)
        x = x + self.param("positions", nn.initializers.normal(0.02), (1, x.shape[1], self.width), self.dtype)
        block = nn.remat(Block) if self.remat else Block
        for index in range(self.depth):
            x = block(self.heads, self.hidden, dtype=self.dtype, name=f"block{index}")(x)
        x = nn.LayerNorm(1e-6, dtype=self.dtype, param_dtype=self.dtype, name="norm")(x)
        return nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.dtype, name="head")(x[:, 0])


class GPT2(nn.Module):
    """GPT-2: token and position embeddings, ``depth`` causal blocks, a final LayerNorm, and logits from the
    token embedding itself (tied weights). Defaults: GPT-2 small, 124M."""

    vocabulary: int = 50257
    context: int = 1024
    width: int = 768
    depth: int = 12
    heads: int = 12
    dtype: Any = jnp.float32
    #: Recompute each block's activations in the backward pass (``nn.remat``) instead of keeping them.
    remat: bool = False

    @nn.compact
    def __call__(self, tokens: Any) -> Any:
        embed = nn.Embed(self.vocabulary, self.width, dtype=self.dtype, param_dtype=self.dtype, name="tokens")
        positions = nn.Embed(self.context, self.width, dtype=self.dtype, param_dtype=self.dtype, name="positions")
        x = embed(tokens) + positions(jnp.arange(tokens.shape[-1]))
        block = nn.remat(Block) if self.remat else Block
        for index in range(self.depth):
            x = block(self.heads, 4 * self.width, causal=True, approximate_gelu=True, epsilon=1e-5, dtype=self.dtype,
                      name=f"block{index}")(x)
        x = nn.LayerNorm(1e-5, dtype=self.dtype, param_dtype=self.dtype, name="norm")(x)
        return embed.attend(x)
