"""The SpineNet-Mobile parts of the backbone: MBConv blocks, their stem and resampling, in Keras 3.

As docs/search_space.md#spinenet-mobile describes them (the reference is
Model Garden's ``SpineNetMobile``): an MBConv block expands its input 6x with
a 1x1 conv (BN, activation), applies a 3x3 depthwise conv (BN, activation),
squeeze-excitation sized from the block's input width, and a 1x1 projection
(BN), adding its input when the shape is kept; there is no activation at its
end. A parent is resampled without an alpha step: down by 3x3 stride-2
depthwise convs (BN, activation each), up by nearest neighbour, then a 1x1
conv to the target width (BN). ``search_space.layer_costs`` counts the same
layers.
"""

from __future__ import annotations

from keras import layers

from proxy_trainer.detector.layers import LayerFactory
from search_space.widths import MBCONV_EXPAND_RATIO, MBCONV_KERNEL, MOBILE_STEM_CONV_KERNEL, se_filters

# The squeeze-excitation's inner and gating activations (reference defaults of SpineNetMobile).
SE_ACTIVATION = "relu"
SE_GATING = "hard_sigmoid"


def squeeze_excite(f: LayerFactory, x, squeezed: int, name: str):
    """Scales each channel of ``x`` by a gate computed from its spatial mean."""
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_mean")(x)
    s = f.act(f.conv(s, squeezed, 1, 1, f"{name}_se_reduce", use_bias=True), f"{name}_se_act", SE_ACTIVATION)
    s = f.conv(s, int(x.shape[-1]), 1, 1, f"{name}_se_expand", use_bias=True)
    s = f.act(s, f"{name}_se_gate", SE_GATING)
    return layers.Multiply(name=f"{name}_se_scale")([x, s])


def mbconv_block(f: LayerFactory, x, filters: int, strides: int, name: str):
    """An MBConv block from ``x`` to ``filters`` channels."""
    c_in = int(x.shape[-1])
    shortcut = x
    x = f.conv_bn(x, c_in * MBCONV_EXPAND_RATIO, 1, 1, f"{name}_expand", act=True)
    x = f.bn(f.depthwise(x, MBCONV_KERNEL, strides, f"{name}_dw_conv"), f"{name}_dw_bn")
    x = f.act(x, f"{name}_dw_act")
    x = squeeze_excite(f, x, se_filters(c_in), name)
    x = f.conv_bn(x, filters, 1, 1, f"{name}_project", act=False)
    if c_in == filters and strides == 1:
        x = layers.Add(name=f"{name}_add")([x, shortcut])
    return x


def mobile_stem_conv(f: LayerFactory, images, filters: int):
    """The Mobile stem conv: 3x3 stride 2 -> BN -> activation, ending at L1 (no max-pool)."""
    return f.conv_bn(images, filters, MOBILE_STEM_CONV_KERNEL, 2, "stem", act=True)


def sepconv_resample(f: LayerFactory, x, size: int, target_size: int, target_channels: int, name: str):
    """Brings a Mobile parent of side ``size`` to ``target_size`` and ``target_channels``."""
    step = 0
    while size > target_size:
        x = f.bn(f.depthwise(x, 3, 2, f"{name}_down{step}_conv"), f"{name}_down{step}_bn")
        x = f.act(x, f"{name}_down{step}_act")
        size, step = int(x.shape[1]), step + 1
    if size < target_size:
        x = layers.UpSampling2D(size=target_size // size, interpolation="nearest", name=f"{name}_up")(x)
    return f.conv_bn(x, target_channels, 1, 1, f"{name}_match", act=False)
