"""Typed, frozen configuration of the proxy detector.

``ModelConfig`` is the ``model`` section of an experiment. Only
``proxy_trainer.detector.retinanet.build_model`` reads it; the model classes
take its ``LayerSpec`` (levels, activation, batch norm: what every layer of
the detector shares), validated once when it is made, plus their own sizes.
A new setting shared by the layers is one field here, on ``LayerSpec`` and
on ``ModelConfig`` (the config file's flat ``model.*`` key), and one use in
the layer that reads it. The anchor fields live here because the head's
width depends on ``num_scales * len(aspect_ratios)``;
``proxy_trainer.detector.anchors`` reads the same fields.

This module imports no TensorFlow and no model code, so configs can be read,
validated and costed anywhere.

Defaults are the search's proxy (docs/search_space.md#model-ids and
docs/proxy_recipe.md#proxy-model): model id ``proxy`` (scaling 0.25 / alpha
0.25 / 64 endpoint filters, head 4 x 64), 512 px, 90 class logits (COCO
category ids run to 90), anchors of 3 scales x aspect ratios {0.5, 1, 2} with
size 3, levels 3..7, ReLU, and the reference batch norm (momentum 0.99,
epsilon 1e-3).
"""

from __future__ import annotations

import dataclasses

from search_space import MODEL_PRESETS, Architecture
from search_space.cost_model import ModelCost, model_cost
from search_space.presets import scaling_for
from search_space.widths import check_input_size

# Activations the search and the published recipes use (docs/search_space.md#blocks;
# hard-swish: the SpineNet-Mobile models, docs/search_space.md#spinenet-mobile).
ACTIVATIONS = ("relu", "swish", "hard_swish")
# The reference RetinaNet head when no model id gives one (docs/search_space.md#model-ids).
DEFAULT_HEAD_NUM_CONVS = 4
DEFAULT_HEAD_NUM_FILTERS = 256


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """What every layer of the detector shares; validated when made.

    Attributes:
      min_level: lowest output level (P3).
      max_level: highest output level (P7).
      activation: ``"relu"``, ``"swish"`` or ``"hard_swish"``.
      bn_momentum: batch-norm moving-average momentum.
      bn_epsilon: batch-norm epsilon.

    Raises:
      ValueError: ``model.<field>: <value>; allowed <values>`` for the first
        invalid field (the names are the config file's ``model.*`` keys).
    """

    min_level: int = 3
    max_level: int = 7
    activation: str = "relu"
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3

    def __post_init__(self):
        def bad(name: str, allowed: str) -> None:
            raise ValueError(f"model.{name}: {getattr(self, name)!r}; allowed {allowed}")

        if not (_is_int(self.min_level) and _is_int(self.max_level) and 1 <= self.min_level <= self.max_level <= 7):
            bad("min_level", f"integers with 1 <= min_level <= max_level ({self.max_level!r}) <= 7")
        if self.activation not in ACTIVATIONS:
            bad("activation", ", ".join(ACTIVATIONS))
        if not 0 <= self.bn_momentum < 1:
            bad("bn_momentum", "[0, 1)")
        if not self.bn_epsilon > 0:
            bad("bn_epsilon", "> 0")

    @property
    def levels(self) -> range:
        """``min_level..max_level``."""
        return range(self.min_level, self.max_level + 1)

    def to_dict(self) -> dict:
        """The fields, for a Keras ``get_config``."""
        return dataclasses.asdict(self)

    @classmethod
    def of(cls, value: LayerSpec | dict | None) -> LayerSpec:
        """``value`` itself, the spec of its dict (from ``get_config``), or the defaults for None."""
        if value is None:
            return cls()
        return value if isinstance(value, cls) else cls(**value)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The detector trained for each architecture.

    Attributes:
      model_id: a key of ``search_space.MODEL_PRESETS`` (``"49"``, ``"proxy"``,
        ...). When set, its scaling replaces the architecture's own and its head
        size is the default head. None keeps the architecture's scaling.
      input_size: side of the square input in pixels; its levels must resample
        exactly (a multiple of 2**max_level, or a small power of two).
      num_classes: sigmoid class logits per anchor (K; no background class).
      head_num_convs: convs per head subnet; None = the model id's (or 4).
      head_num_filters: width of the head convs; None = the model id's (or 256).
      head_separable: separable head convs (3x3 depthwise then 1x1, the
        SpineNet-Mobile head); None = the model id's (or plain convs).
      num_scales: anchor scales per octave.
      aspect_ratios: anchor aspect ratios (width / height).
      anchor_size: anchor side in units of the level's stride.
      min_level, max_level, activation, bn_momentum, bn_epsilon: the
        ``LayerSpec`` (``layer_spec()``), flat here as in the config file.
    """

    model_id: str | None = "proxy"
    input_size: int = 512
    num_classes: int = 90
    head_num_convs: int | None = None
    head_num_filters: int | None = None
    head_separable: bool | None = None
    num_scales: int = 3
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    anchor_size: float = 3.0
    min_level: int = 3
    max_level: int = 7
    activation: str = "relu"
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3

    def __post_init__(self):
        object.__setattr__(self, "aspect_ratios", tuple(self.aspect_ratios))

    @property
    def num_anchors(self) -> int:
        """Anchors per location: ``num_scales * len(aspect_ratios)``."""
        return self.num_scales * len(self.aspect_ratios)

    def layer_spec(self) -> LayerSpec:
        """The ``LayerSpec`` of these settings (every field of it, by name); validates them."""
        return LayerSpec(**{f.name: getattr(self, f.name) for f in dataclasses.fields(LayerSpec)})

    def head_size(self) -> tuple[int, int]:
        """``(convs, filters)`` of the head: the fields, else the model id's, else 4 x 256."""
        preset = MODEL_PRESETS.get(self.model_id) if self.model_id is not None else None
        convs = self.head_num_convs
        filters = self.head_num_filters
        if convs is None:
            convs = preset.head_num_convs if preset else DEFAULT_HEAD_NUM_CONVS
        if filters is None:
            filters = preset.head_num_filters if preset else DEFAULT_HEAD_NUM_FILTERS
        return convs, filters

    def separable_head(self) -> bool:
        """Whether the head's convs are separable: the field, else the model id's, else False."""
        if self.head_separable is not None:
            return self.head_separable
        preset = MODEL_PRESETS.get(self.model_id) if self.model_id is not None else None
        return bool(preset and preset.head_separable)

    def scaled(self, architecture: Architecture) -> Architecture:
        """``architecture`` with the model id's scaling (unchanged when model_id is None).

        Raises:
          ArchitectureError: the model id scales the other family (e.g. ``49`` for a SpineNet-Mobile).
        """
        if self.model_id is None:
            return architecture
        return architecture.with_scaling(scaling_for(architecture, self.model_id))

    def cost(self, architecture: Architecture) -> ModelCost:
        """Exact parameters and multiply-adds of the model ``build_model`` builds."""
        convs, filters = self.head_size()
        return model_cost(
            self.scaled(architecture),
            input_size=self.input_size,
            num_classes=self.num_classes,
            head_num_convs=convs,
            head_num_filters=filters,
            num_anchors=self.num_anchors,
            min_level=self.min_level,
            max_level=self.max_level,
            activation=self.activation,
            head_separable=self.separable_head(),
        )

    def validate(self) -> None:
        """Raises ValueError naming the first invalid field and its allowed values."""

        def bad(name: str, allowed: str) -> None:
            raise ValueError(f"model.{name}: {getattr(self, name)!r}; allowed {allowed}")

        if self.model_id is not None and self.model_id not in MODEL_PRESETS:
            bad("model_id", f"null or one of {', '.join(MODEL_PRESETS)}")
        for name in ("num_classes", "num_scales"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                bad(name, "an integer >= 1")
        if self.head_num_convs is not None and (not _is_int(self.head_num_convs) or self.head_num_convs < 0):
            bad("head_num_convs", "null or an integer >= 0")
        if self.head_num_filters is not None and (not _is_int(self.head_num_filters) or self.head_num_filters < 1):
            bad("head_num_filters", "null or an integer >= 1")
        if self.head_separable is not None and not isinstance(self.head_separable, bool):
            bad("head_separable", "null, true or false")
        if not self.aspect_ratios or any(not r > 0 for r in self.aspect_ratios):
            bad("aspect_ratios", "a non-empty list of numbers > 0")
        if not self.anchor_size > 0:
            bad("anchor_size", "a number > 0")
        self.layer_spec()
        try:
            check_input_size(self.input_size, 2, self.max_level)
        except ValueError as e:
            raise ValueError(f"model.input_size: {e}") from None
