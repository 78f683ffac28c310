"""A model's weights in an order fixed by its dataflow graph, to copy them between implementations.

Two implementations of the same network (ours in Keras 3, the reference's in tf-keras) name their layers
differently, nest them differently, list their weights in different orders and even run their
functional graphs in different topological orders; what they share is the dataflow: which op feeds
which, and in which input position. ``weighted_layers`` orders the layers by that alone. It traces
``call(model, x)`` (the outputs as a list in a fixed order: P3-P7, the class outputs, the box outputs)
into a TensorFlow graph and walks the graph depth first from the outputs, in their order, visiting each
op's inputs in their own order (an addition ``x + shortcut`` visits ``x``'s branch first, a fusion
``p0 + p1 + ...`` its parents in order) and listing each op after its inputs (post-order). A layer takes
the place where its first variable read appears in that walk (a head conv shared by the levels counts
where P3 first uses it). Within a layer each variable keeps its role (``kernel``, ``bias``, ``gamma``,
``beta``, ``moving_mean``, ``moving_variance``, or a separable conv's ``depthwise_kernel`` and
``pointwise_kernel``), read from the layer's own attributes. Layers that no output depends on (a block
that reaches no output) are not listed. No layer or variable name is looked at except in messages. The walk does follow the
order of an addition's inputs, so both sides must add a block's parents in the same order (ours and the
reference's both add them in block-spec order); two listings of one network that relabel a block's
parents the other way round give two orders.

``export_weights`` turns the list into plain arrays (keys ``NNNN.role``) and ``import_weights`` assigns
them, position by position, to another model's list, after checking that both have as many layers and
that each position has the same roles and shapes. The kinds and shapes catch most mismatches of
structure (a missing projection, another width); what they cannot catch (two layers of equal shapes
swapped) changes the outputs, which is what the output parity bench (``bench/bench_output_parity.py``)
compares. Works with Keras 3 and tf-keras models on the TensorFlow backend.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

# The variables a conv, separable conv or batch-norm layer holds, by the attribute that holds each
# (the same names in Keras 3 and tf-keras).
ROLES = ("kernel", "depthwise_kernel", "pointwise_kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")


class WeightOrderError(ValueError):
    """Two models' weights cannot be matched position by position; the message says where."""


@dataclasses.dataclass
class LayerWeights:
    """One layer whose variables the computation reads: its kind, its name (for messages) and its variables."""

    name: str
    variables: dict[str, tf.Variable]  # role -> the underlying tf.Variable

    @property
    def kind(self) -> str:
        return "batch_norm" if "moving_mean" in self.variables else "conv"

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {role: tuple(v.shape) for role, v in self.variables.items()}


def _tf_variable(v: Any) -> tf.Variable | None:
    """The tf.Variable behind a Keras 3 or tf-keras variable (None for anything else)."""
    if isinstance(v, tf.Variable):
        return v
    inner = getattr(v, "value", None)  # a Keras 3 variable on the TensorFlow backend
    return inner if isinstance(inner, tf.Variable) else None


def _sublayers(model) -> list:
    # Keras 3 and tf-keras both keep this walk (every nested layer, each once).
    return list(model._flatten_layers(include_self=False, recursive=True))  # noqa: SLF001


def _post_order(outputs) -> list:
    """The graph's ops in depth-first post-order from ``outputs``, each op's inputs in their own order."""
    order, done, stack = [], set(), [(t.op, False) for t in reversed(outputs)]
    while stack:
        op, expanded = stack.pop()
        if expanded:
            order.append(op)
            continue
        if op.name in done:
            continue
        done.add(op.name)
        stack.append((op, True))
        stack.extend((t.op, False) for t in reversed(list(op.inputs)) if t.op.name not in done)
    return order


def weighted_layers(
    model, input_shape: tuple[int, ...], call: Callable[[Any, tf.Tensor], Any] | None = None
) -> list[LayerWeights]:
    """The layers whose variables ``call(model, x)`` reads, in the dataflow order of the module docstring.

    Args:
      model: a Keras 3 or tf-keras model (TensorFlow backend).
      input_shape: the input's shape, batch included (float32).
      call: how to run the model, returning its outputs as a list in a fixed order (the order starts
        the walk, so both sides must list the same outputs alike); default ``model(x, training=False)``.

    Raises:
      WeightOrderError: the computation reads a variable that belongs to no conv or batch-norm role.
    """
    call = call or (lambda m, x: m(x, training=False))
    roles: dict[int, tuple[Any, str, tf.Variable]] = {}
    for layer in _sublayers(model):
        for role in ROLES:
            v = _tf_variable(getattr(layer, role, None))
            if v is not None:
                roles.setdefault(id(v.handle), (layer, role, v))
    fn = tf.function(lambda x: tf.nest.flatten(call(model, x))).get_concrete_function(
        tf.TensorSpec(input_shape, tf.float32)
    )
    external = {internal.ref(): ext for ext, internal in fn.graph.captures}
    order: list[LayerWeights] = []
    by_layer: dict[int, LayerWeights] = {}
    for op in _post_order(fn.graph.outputs):
        if op.type != "ReadVariableOp":
            continue
        handle = external.get(op.inputs[0].ref())
        if handle is None:
            continue
        if id(handle) not in roles:
            raise WeightOrderError(f"the computation reads a variable of no known role ({op.name})")
        layer, role, v = roles[id(handle)]
        entry = by_layer.get(id(layer))
        if entry is None:
            entry = by_layer[id(layer)] = LayerWeights(layer.name, {})
            order.append(entry)
        entry.variables[role] = v
    return order


def export_weights(layers: list[LayerWeights]) -> dict[str, np.ndarray]:
    """The layers' values as arrays keyed ``NNNN.role`` (position in the order, role)."""
    return {f"{i:04d}.{role}": v.numpy() for i, layer in enumerate(layers) for role, v in layer.variables.items()}


def import_weights(layers: list[LayerWeights], arrays: dict[str, np.ndarray]) -> int:
    """Assigns ``arrays`` (``export_weights`` of another model) to ``layers``, position by position.

    Returns:
      The number of variables assigned.

    Raises:
      WeightOrderError: another number of layers, or a position with other roles or shapes.
    """
    positions: dict[int, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        index, role = key.split(".", 1)
        positions.setdefault(int(index), {})[role] = np.asarray(value)
    if sorted(positions) != list(range(len(layers))):
        raise WeightOrderError(f"the weights hold {len(positions)} layers, the model {len(layers)}")
    for i, layer in enumerate(layers):
        theirs = {role: tuple(a.shape) for role, a in positions[i].items()}
        if theirs != layer.shapes():
            raise WeightOrderError(
                f"layer {i} ({layer.kind} {layer.name}): the model has {layer.shapes()}, the weights {theirs}"
            )
    count = 0
    for i, layer in enumerate(layers):
        for role, v in layer.variables.items():
            v.assign(positions[i][role].astype(v.dtype.as_numpy_dtype))
            count += 1
    return count
