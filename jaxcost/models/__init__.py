"""Whole models: the reference zoo with its published figures (``zoo``) and any model costed layer by
layer from one compile (``analysis``).
"""

from jaxcost.models.zoo import (
    GPT2,
    ZOO,
    MobileNetV1,
    MobileNetV2,
    Published,
    ResNet50,
    ViT,
    ZooModel,
    build,
    training_keywords,
)

__all__ = ["GPT2", "ZOO", "MobileNetV1", "MobileNetV2", "Published", "ResNet50", "ViT", "ZooModel", "build",
           "training_keywords"]
