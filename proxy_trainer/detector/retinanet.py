"""RetinaNet (Lin et al., 2017) on a SpineNet backbone, in Keras 3.

Output contract (the trainer, the losses and the post-processing rely on
it): ``model(images, training=...)`` with float32 images ``[B, S, S, 3]``
returns::

    {"cls_outputs": {"3": [B, S/8, S/8, A*K], ..., "7": [...]},
     "box_outputs": {"3": [B, S/8, S/8, A*4], ..., "7": [...]}}

with string level keys, ``A`` anchors per location, ``K`` sigmoid class
logits (no background class) and sides ``ceil(S / 2**level)``. Channel
``a * K + k`` is class ``k`` of anchor ``a`` and channel ``a * 4 + j`` is box
coordinate ``j`` of anchor ``a`` (the layout of ``proxy_trainer.detector.anchors``).
The outputs are float32 whatever the global mixed-precision policy.

The head is the reference one (docs/search_space.md#retinanet-head): a class
subnet and a box subnet, each ``num_convs`` x (3x3 conv with bias -> batch
norm -> activation) then a 3x3 conv with bias to the outputs; the convs are
shared by all levels, the batch norms are per level. Kernels start from
N(0, 0.01), biases from 0, and the class bias from ``-log((1 - 0.01) / 0.01)``
so every anchor starts at the prior probability 0.01 (focal-loss paper; Model
Garden's head starts its two output convs from N(0, 1e-5) instead, see
docs/proxy_recipe.md#proxy-model).
With ``separable`` (the SpineNet-Mobile head) every conv is a 3x3 depthwise
conv followed by a 1x1 conv with bias; as in the reference, the tower's keep
Keras' default initializers and the output convs start from N(0, 0.03).
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import layers

from proxy_trainer.detector.config import LayerSpec, ModelConfig
from proxy_trainer.detector.spinenet import FusedBatchNormalization, SpineNet
from search_space import Architecture, architecture_from_dict, architecture_to_dict
from search_space.widths import BOX_PARAMS_PER_ANCHOR, level_size

# Focal-loss paper (Lin et al. 2017, section 4.1): foreground prior at init.
CLASS_PRIOR = 0.01
# Head kernel initializer: N(0, 0.01) (focal-loss paper; Model Garden's tower convs, not its output convs).
HEAD_KERNEL_STDDEV = 0.01
# Reference separable head: its output convs' depthwise and pointwise kernels start from N(0, 0.03).
SEPARABLE_OUTPUT_STDDEV = 0.03


@keras.saving.register_keras_serializable(package="proxy_trainer")
class RetinaNetHead(keras.Model):
    """Shared class and box subnets over the levels ``min_level..max_level``.

    Input: ``{"3": [B, H3, W3, C], ...}`` with sides ``ceil(input_size / 2**level)``
    and ``C = input_filters``; output: the dict of the module docstring.

    Args:
      input_size: side of the model's input image (fixes the level sizes).
      input_filters: channels of the backbone endpoints.
      num_classes: class logits per anchor (K).
      num_anchors: anchors per location (A).
      num_convs: convs per subnet before the output conv (0 allowed).
      num_filters: width of those convs.
      spec: levels, activation and batch norm (a ``LayerSpec``, its dict, or
        None for the defaults).
      separable: separable convs (the SpineNet-Mobile head).
      **kwargs: ``name`` and ``trainable``.
    """

    def __init__(
        self,
        input_size: int,
        input_filters: int,
        num_classes: int,
        num_anchors: int = 9,
        num_convs: int = 4,
        num_filters: int = 256,
        spec: LayerSpec | dict | None = None,
        separable: bool = False,
        **kwargs,
    ):
        spec = LayerSpec.of(spec)
        for name, value, minimum in (
            ("num_classes", num_classes, 1),
            ("num_anchors", num_anchors, 1),
            ("num_convs", num_convs, 0),
            ("num_filters", num_filters, 1),
            ("input_filters", input_filters, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"RetinaNet head: {name} must be an integer >= {minimum}, got {value!r}")
        levels = [str(level) for level in spec.levels]
        features = {
            lv: keras.Input(shape=(level_size(input_size, int(lv)),) * 2 + (input_filters,), name=lv) for lv in levels
        }

        def conv(filters: int, name: str, bias_init="zeros", output: bool = False):
            if separable:
                kernel_init = (
                    dict(
                        depthwise_initializer=keras.initializers.RandomNormal(stddev=SEPARABLE_OUTPUT_STDDEV),
                        pointwise_initializer=keras.initializers.RandomNormal(stddev=SEPARABLE_OUTPUT_STDDEV),
                    )
                    if output
                    else {}
                )
                return layers.SeparableConv2D(
                    filters, 3, padding="same", bias_initializer=bias_init, name=name, **kernel_init
                )
            return layers.Conv2D(
                filters,
                3,
                padding="same",
                kernel_initializer=keras.initializers.RandomNormal(stddev=HEAD_KERNEL_STDDEV),
                bias_initializer=bias_init,
                name=name,
            )

        prior_bias = keras.initializers.Constant(-math.log((1 - CLASS_PRIOR) / CLASS_PRIOR))
        subnets = {
            "cls": (
                [conv(num_filters, f"cls_conv{i}") for i in range(num_convs)],
                conv(num_anchors * num_classes, "cls_logits", prior_bias, output=True),
            ),
            "box": (
                [conv(num_filters, f"box_conv{i}") for i in range(num_convs)],
                conv(num_anchors * BOX_PARAMS_PER_ANCHOR, "box_deltas", output=True),
            ),
        }
        outputs = {"cls_outputs": {}, "box_outputs": {}}
        for lv in levels:
            for subnet, (convs, final) in subnets.items():
                x = features[lv]
                for i, shared in enumerate(convs):
                    x = shared(x)
                    bn = FusedBatchNormalization(
                        momentum=spec.bn_momentum, epsilon=spec.bn_epsilon, name=f"{subnet}_bn{i}_p{lv}"
                    )
                    x = layers.Activation(spec.activation, name=f"{subnet}_act{i}_p{lv}")(bn(x))
                x = final(x)
                # Float32 outputs under any mixed-precision policy (the losses need them).
                key = "cls_outputs" if subnet == "cls" else "box_outputs"
                outputs[key][lv] = layers.Activation("linear", dtype="float32", name=f"{subnet}_out_p{lv}")(x)
        kwargs.setdefault("name", "retinanet_head")
        super().__init__(inputs=features, outputs=outputs, **kwargs)
        self._head_config = {
            "input_size": input_size,
            "input_filters": input_filters,
            "num_classes": num_classes,
            "num_anchors": num_anchors,
            "num_convs": num_convs,
            "num_filters": num_filters,
            "spec": spec.to_dict(),
            "separable": separable,
        }

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments."""
        return {**self._head_config, "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RetinaNetHead:
        return cls(**config)


@keras.saving.register_keras_serializable(package="proxy_trainer")
class RetinaNet(keras.Model):
    """SpineNet backbone + RetinaNet head: images -> the output dict of the module docstring.

    The architecture is part of ``get_config()``; ``RetinaNet.from_config``
    rebuilds the same graph. ``model.backbone`` and ``model.head`` are the
    two parts (``SpineNet`` and ``RetinaNetHead``).

    Args:
      architecture: topology and scaling, or its schema dict.
      input_size: side of the square input image.
      num_classes: class logits per anchor.
      num_anchors: anchors per location.
      head_num_convs: convs per head subnet.
      head_num_filters: width of the head convs.
      spec: levels, activation and batch norm of backbone and head (a
        ``LayerSpec``, its dict, or None for the defaults).
      head_separable: separable head convs (the SpineNet-Mobile head).
      **kwargs: ``name`` and ``trainable``.

    Raises:
      ArchitectureError: the architecture cannot be built at ``input_size``.
      ValueError: a bad head setting or spec dict.
    """

    def __init__(
        self,
        architecture: Architecture | dict,
        input_size: int,
        num_classes: int,
        num_anchors: int = 9,
        head_num_convs: int = 4,
        head_num_filters: int = 256,
        spec: LayerSpec | dict | None = None,
        head_separable: bool = False,
        **kwargs,
    ):
        if isinstance(architecture, dict):
            architecture, _ = architecture_from_dict(architecture)
        spec = LayerSpec.of(spec)
        backbone = SpineNet(architecture, input_size, spec)
        head = RetinaNetHead(
            input_size,
            architecture.scaling.endpoints_num_filters,
            num_classes,
            num_anchors=num_anchors,
            num_convs=head_num_convs,
            num_filters=head_num_filters,
            spec=spec,
            separable=head_separable,
        )
        images = keras.Input(shape=(input_size, input_size, 3), name="images")
        outputs = head(backbone(images))
        kwargs.setdefault("name", "retinanet")
        super().__init__(inputs=images, outputs=outputs, **kwargs)
        self.backbone = backbone
        self.head = head
        self._retinanet_config = {
            "architecture": architecture_to_dict(architecture),
            "input_size": input_size,
            "num_classes": num_classes,
            "num_anchors": num_anchors,
            "head_num_convs": head_num_convs,
            "head_num_filters": head_num_filters,
            "spec": spec.to_dict(),
            "head_separable": head_separable,
        }

    @property
    def architecture(self) -> Architecture:
        """The architecture of the backbone."""
        return self.backbone.architecture

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, the architecture as its schema dict."""
        return {**self._retinanet_config, "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RetinaNet:
        return cls(**config)


def build_spinenet_backbone(architecture: Architecture, *, input_size: int, spec: LayerSpec | None = None) -> SpineNet:
    """The SpineNet backbone alone: images -> ``{"3": P3, ..., "7": P7}``."""
    return SpineNet(architecture, input_size, spec)


def build_retinanet(
    architecture: Architecture,
    *,
    input_size: int,
    num_classes: int,
    num_anchors: int = 9,
    head_num_convs: int = 4,
    head_num_filters: int = 256,
    spec: LayerSpec | None = None,
    head_separable: bool = False,
) -> RetinaNet:
    """A RetinaNet on the SpineNet of ``architecture`` (see ``RetinaNet``)."""
    return RetinaNet(
        architecture,
        input_size,
        num_classes,
        num_anchors=num_anchors,
        head_num_convs=head_num_convs,
        head_num_filters=head_num_filters,
        spec=spec,
        head_separable=head_separable,
    )


def build_model(model_config: ModelConfig, architecture: Architecture) -> RetinaNet:
    """The RetinaNet of ``architecture`` as ``model_config`` describes it.

    Args:
      model_config: the detector settings (validated here).
      architecture: the SpineNet topology; its scaling is replaced by the
        model id's when ``model_config.model_id`` is set.

    Returns:
      A ``RetinaNet`` keras.Model (output contract in ``proxy_trainer.detector.retinanet``).

    Raises:
      ValueError: an invalid config field.
      ArchitectureError: the architecture cannot be built with this config.
    """
    model_config.validate()
    convs, filters = model_config.head_size()
    return build_retinanet(
        model_config.scaled(architecture),
        input_size=model_config.input_size,
        num_classes=model_config.num_classes,
        num_anchors=model_config.num_anchors,
        head_num_convs=convs,
        head_num_filters=filters,
        spec=model_config.layer_spec(),
        head_separable=model_config.separable_head(),
    )
