"""Reference networks as Flax linen modules, with the figures their papers publish."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import flax.linen as nn

from jaxcost.models.mobilenet import MobileNetV1, MobileNetV2
from jaxcost.models.resnet import ResNet50
from jaxcost.models.transformer import GPT2, ViT
from jaxcost.specs import dtype_name

if TYPE_CHECKING:
    from jaxcost.formulas import Mode

FLOAT_DTYPES = ("float32", "bfloat16", "float16", "float64")


@dataclass(frozen=True)
class Published:
    """A model's published textbook multiply-adds (at 1.0 / 224 for image models; None where none is
    published) and parameter count, and where they come from."""

    macs: float | None
    params: float
    source: str


@dataclass(frozen=True)
class ZooModel:
    build: Callable[..., nn.Module]
    published: Published
    takes_alpha: bool = True
    #: The context length of a token model (its input is batch x tokens of int32); 0 for an image model.
    tokens: int = 0


ZOO: dict[str, ZooModel] = {
    "mobilenet_v1": ZooModel(MobileNetV1, Published(569e6, 4.2e6, "Howard et al. 2017, Table 8: 569 M mult-adds, "
                                                             "4.2 M parameters")),
    "mobilenet_v2": ZooModel(MobileNetV2, Published(300e6, 3.5e6, "Sandler et al. 2018, Table 4: 300 M MACs, "
                                                             "3.4 M parameters; torchvision: 3.5 M (3,504,872)")),
    "resnet50": ZooModel(lambda **kw: ResNet50(v1_5=True, **kw),
                         Published(4.09e9, 25_557_032, "torchvision ResNet50_Weights: 4.09 GFLOPS (multiply-adds), "
                                                       "25,557,032 params"), takes_alpha=False),
    "resnet50_v1": ZooModel(lambda **kw: ResNet50(v1_5=False, **kw),
                            Published(3.86e9, 25_557_032, "He et al. 2016 layout (stride in the first 1x1); "
                                                          "3.8 G FLOPs in the paper's Table 1"), takes_alpha=False),
    "vit_b16": ZooModel(lambda **kw: ViT(**kw),
                        Published(17.56e9, 86_567_656, "torchvision ViT_B_16_Weights: 17.56 GFLOPS (multiply-adds), "
                                                       "86,567,656 params"), takes_alpha=False),
    "gpt2_small": ZooModel(lambda num_classes, dtype: GPT2(dtype=dtype),
                           Published(None, 124_439_808, "Radford et al. 2019 (124M); Hugging Face gpt2: 124,439,808 "
                                                        "params, the logits tied to the token embedding"),
                           takes_alpha=False, tokens=1024),
}


def training_keywords(model: nn.Module, mode: Mode) -> dict[str, bool]:
    """The keywords a zoo network is called with in ``mode``: ``train=True`` for a training step where its call takes
    ``train`` (the networks with batch norm, which train with batch statistics); none otherwise."""
    takes_train = "train" in inspect.signature(type(model).__call__).parameters
    return {"train": True} if mode == "train" and takes_train else {}


def build(name: str, alpha: float = 1.0, num_classes: int = 1000, dtype: Any = "float32") -> nn.Module:
    """A zoo model by name (``jaxcost.models.ZOO``), with width multiplier `alpha` where the model has one."""
    if name not in ZOO:
        hint = "; a model of your own is path/to/file.py:Factory" if name.endswith(".py") or "/" in name else ""
        raise ValueError(f"model: unknown model {name!r}; the zoo has {', '.join(ZOO)}{hint}")
    if dtype_name(dtype) not in FLOAT_DTYPES:
        raise ValueError(f"dtype: the zoo's models compute in a floating-point dtype ({', '.join(FLOAT_DTYPES)}), "
                         f"got {dtype_name(dtype)}")
    if not alpha > 0:
        raise ValueError(f"alpha: the width multiplier must be positive, got {alpha!r}")
    entry = ZOO[name]
    if entry.takes_alpha:
        return entry.build(alpha=alpha, num_classes=num_classes, dtype=dtype)
    if alpha != 1.0:
        raise ValueError(f"alpha: {name} has no width multiplier")
    return entry.build(num_classes=num_classes, dtype=dtype)
