"""The SpineNet backbone (Du et al., CVPR 2020) in Keras 3, built from any architecture.

The network follows docs/search_space.md (Meta-architecture, Block widths,
Blocks, Resampling and fusion) and the public reference model: a ResNet stem
(7x7 stride-2 conv, batch norm, activation, 3x3 stride-2 max-pool) and the
stem candidates (block groups applied one after the other, each a candidate
parent), then the scale-permuted blocks in build order. Each block resamples
its two parents to its own level and width (``_resample``), sums them (an
output block also sums, raw, every earlier entry that nobody had consumed so
far and whose shape matches, as the reference does), applies the activation
and its block group. The output block of each level ``min_level..max_level``
goes through a 1x1 conv, batch norm and activation to the endpoint width,
giving P3..P7.

A SpineNet-Mobile (an architecture of ``mbconv`` blocks) is built by the same
walk with its own stem, blocks and resampling (``proxy_trainer.detector.mbconv``;
docs/search_space.md#spinenet-mobile). A block's own width multiplier and
repeat count (docs/search_space.md#resource-distribution) set its width and the
blocks of its group, chained: the first takes the fused parents, each other one
the previous block's output.

The model is a functional Keras model, so blocks that reach no output are
left out of it. ``search_space.cost_model`` counts the same network without
TensorFlow; the tests check that both agree exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
from keras import layers

from proxy_trainer.detector.config import LayerSpec
from proxy_trainer.detector.layers import FusedBatchNormalization, LayerFactory
from proxy_trainer.detector.mbconv import mbconv_block, mobile_stem_conv, sepconv_resample
from search_space import BOTTLENECK, MBCONV, SPINENET_MOBILE, Architecture, architecture_from_dict, architecture_to_dict
from search_space.cost_model import check_buildable
from search_space.widths import (
    STEM_CONV_FILTERS,
    STEM_CONV_KERNEL,
    block_channels,
    block_filters,
    block_width,
    resample_filters,
    stem_conv_filters,
    stem_level,
)

# Imported from here by the head and the tests; defined with the other shared layers.
__all__ = ["FusedBatchNormalization", "SpineNet"]


@dataclasses.dataclass
class _Entry:
    """One entry of the running list: a stem candidate or a built block."""

    tensor: Any
    block_fn: str
    size: int
    outgoing: int = 0


class _SpineNetBuilder(LayerFactory):
    """Applies the layers of one SpineNet (or SpineNet-Mobile) to symbolic tensors.

    Layer names carry the running-list index of the block they belong to
    (``block7_from3_down_conv``), so a model summary reads like the
    architecture.
    """

    def __init__(self, architecture: Architecture, spec: LayerSpec):
        super().__init__(spec)
        self.arch = architecture
        self.scaling = architecture.scaling

    # ----- blocks ---------------------------------------------------------------

    def _block(self, x, block_fn: str, filters: int, strides: int, name: str):
        """A residual or bottleneck block (docs/search_space.md#blocks)."""
        c_out = block_channels(block_fn, filters)
        shortcut = x
        if x.shape[-1] != c_out or strides != 1:
            shortcut = self.conv_bn(x, c_out, 1, strides, f"{name}_proj", act=False)
        if block_fn == BOTTLENECK:
            x = self.conv_bn(x, filters, 1, 1, f"{name}_1x1a", act=True)
            x = self.conv_bn(x, filters, 3, strides, f"{name}_3x3", act=True)
            x = self.conv_bn(x, c_out, 1, 1, f"{name}_1x1b", act=False)
        else:
            x = self.conv_bn(x, filters, 3, strides, f"{name}_3x3a", act=True)
            x = self.conv_bn(x, filters, 3, 1, f"{name}_3x3b", act=False)
        x = layers.Add(name=f"{name}_add")([x, shortcut])
        return self.act(x, f"{name}_out")

    def _block_group(self, x, block_fn: str, filters: int, strides: int, name: str, repeats: int):
        """``repeats`` blocks chained: each takes the previous one's output; only the first may stride or project."""
        for r in range(repeats):
            s = strides if r == 0 else 1
            if block_fn == MBCONV:
                x = mbconv_block(self, x, filters, s, f"{name}_r{r}")
            else:
                x = self._block(x, block_fn, filters, s, f"{name}_r{r}")
        return x

    # ----- the network ----------------------------------------------------------

    def _build_stem(self, images) -> list[_Entry]:
        """ResNet stem (or the Mobile stem conv), then the stem candidates, each applied after the previous one."""
        family = self.arch.family
        if family == SPINENET_MOBILE:
            x = mobile_stem_conv(self, images, stem_conv_filters(family, self.scaling.filter_size_scale))
        else:
            x = self.conv_bn(images, STEM_CONV_FILTERS, STEM_CONV_KERNEL, 2, "stem", act=True)
            x = layers.MaxPooling2D(pool_size=3, strides=2, padding="same", name="stem_pool")(x)
        level = stem_level(family)
        candidates = []
        for i, stem_block in enumerate(self.arch.stem):
            filters = block_filters(stem_block.block_fn, stem_block.level, self.scaling.filter_size_scale)
            strides = 1 if stem_block.level == level else 2
            x = self._block_group(x, stem_block.block_fn, filters, strides, f"stem{i}", self.scaling.block_repeats)
            candidates.append(_Entry(x, stem_block.block_fn, int(x.shape[1])))
            level = stem_block.level
        return candidates

    def _resample(self, parent: _Entry, target_size: int, target_channels: int, name: str):
        """Matches a parent to the target's size and width (docs/search_space.md#resampling-and-fusion).

        1x1 conv to ``int(C_parent * alpha)`` -> BN -> act; down: 3x3 stride-2
        conv -> BN -> act, then stride-2 max-pools; up: nearest-neighbour by
        the integer factor; finally 1x1 conv to the target width -> BN. A
        Mobile parent is resampled without the alpha step (``sepconv_resample``).
        """
        if parent.block_fn == MBCONV:
            return sepconv_resample(self, parent.tensor, parent.size, target_size, target_channels, name)
        reduced = resample_filters(int(parent.tensor.shape[-1]), parent.block_fn, self.scaling.resample_alpha)
        x = self.conv_bn(parent.tensor, reduced, 1, 1, f"{name}_reduce", act=True)
        size = parent.size
        if size > target_size:
            x = self.conv_bn(x, reduced, 3, 2, f"{name}_down", act=True)
            size = int(x.shape[1])
            pools = 0
            while size > target_size:
                x = layers.MaxPooling2D(pool_size=3, strides=2, padding="same", name=f"{name}_pool{pools}")(x)
                size, pools = int(x.shape[1]), pools + 1
        elif size < target_size:
            x = layers.UpSampling2D(size=target_size // size, interpolation="nearest", name=f"{name}_up")(x)
        return self.conv_bn(x, target_channels, 1, 1, f"{name}_match", act=False)

    def _build_scale_permuted_network(self, entries: list[_Entry], input_size: int) -> dict[int, Any]:
        """Builds the blocks in order; returns the output block of each level."""
        outputs = {}
        m = self.arch.num_stem
        for k, spec in enumerate(self.arch.blocks):
            idx = m + k
            filters = block_width(spec.block_fn, spec.level, self.scaling.filter_size_scale, spec.width_multiplier)
            channels = block_channels(spec.block_fn, filters)
            size = -(-input_size // 2**spec.level)
            parents = []
            for p in spec.parents:
                parents.append(self._resample(entries[p], size, channels, f"block{idx}_from{p}"))
                entries[p].outgoing += 1
            if spec.is_output:
                # Reference rule: whatever nobody has consumed so far and matches in
                # size and width is summed in raw.
                for entry in entries:
                    if entry.outgoing == 0 and entry.size == size and entry.tensor.shape[-1] == channels:
                        parents.append(entry.tensor)
                        entry.outgoing += 1
            x = layers.Add(name=f"block{idx}_sum")(parents)
            x = self.act(x, f"block{idx}_sum_act")
            x = self._block_group(x, spec.block_fn, filters, 1, f"block{idx}", self.arch.repeats(k))
            entries.append(_Entry(x, spec.block_fn, size))
            if spec.is_output:
                outputs[spec.level] = x
        return outputs

    def _build_endpoints(self, outputs: dict[int, Any]) -> dict[str, Any]:
        """1x1 conv -> BN -> act to the common endpoint width: P{min_level}..P{max_level}."""
        width = self.scaling.endpoints_num_filters
        return {
            str(level): self.conv_bn(outputs[level], width, 1, 1, f"p{level}", act=True) for level in self.spec.levels
        }

    def build(self, images, input_size: int) -> dict[str, Any]:
        entries = self._build_stem(images)
        outputs = self._build_scale_permuted_network(entries, input_size)
        return self._build_endpoints(outputs)


@keras.saving.register_keras_serializable(package="proxy_trainer")
class SpineNet(keras.Model):
    """A SpineNet backbone: images ``[B, S, S, 3]`` -> ``{"3": P3, ..., "7": P7}``.

    The architecture (blocks, stem and scaling) is part of ``get_config()``,
    so ``SpineNet.from_config(model.get_config())`` rebuilds the same graph.

    Args:
      architecture: the topology and scaling, or its schema dict
        (``search_space.architecture_to_dict``).
      input_size: side of the square input image.
      spec: endpoint levels, activation and batch norm (a ``LayerSpec``, its
        dict, or None for the defaults: P3-P7, ReLU, the reference batch norm).
      **kwargs: ``name`` and ``trainable``.

    Raises:
      ArchitectureError: the architecture cannot be built at ``input_size``
        (see ``search_space.cost_model.check_buildable``).
      ValueError: an invalid spec dict.
    """

    def __init__(
        self,
        architecture: Architecture | dict,
        input_size: int,
        spec: LayerSpec | dict | None = None,
        **kwargs,
    ):
        if isinstance(architecture, dict):
            architecture, _ = architecture_from_dict(architecture)
        spec = LayerSpec.of(spec)
        check_buildable(architecture, input_size=input_size, min_level=spec.min_level, max_level=spec.max_level)
        images = keras.Input(shape=(input_size, input_size, 3), name="images")
        endpoints = _SpineNetBuilder(architecture, spec).build(images, input_size)
        kwargs.setdefault("name", architecture.family)
        super().__init__(inputs=images, outputs=endpoints, **kwargs)
        self._spinenet_config = {
            "architecture": architecture_to_dict(architecture),
            "input_size": input_size,
            "spec": spec.to_dict(),
        }
        self._architecture = architecture

    @property
    def architecture(self) -> Architecture:
        """The architecture this backbone was built from."""
        return self._architecture

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, the architecture as its schema dict."""
        return {**self._spinenet_config, "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SpineNet:
        return cls(**config)
