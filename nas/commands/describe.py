"""``nas-search describe``: parameters, multiply-adds and shapes of one architecture's detector.

Usage::

    nas-search describe --arch=FILE_OR_PRESET [--model_id=ID] [--input_size=N]
        [--num_classes=K] [--head_num_convs=N] [--head_num_filters=N] [--activation=A] [--json]

``--arch=preset:spinenet49`` (or ``preset:resnet_like``, ``preset:spinenet_mobile49``,
``preset:spinenet_mobile49S``, ``preset:spinenet_mobile49XS``) selects a published
topology; anything else is an architecture file
(``search_space.load_architecture``). ``--model_id`` (49S, 49, 96, 143, 190,
proxy for a SpineNet; mobile49, mobile49S, mobile49XS for a SpineNet-Mobile)
replaces the architecture's scaling and sets the head and the activation of its
published figures; without it the architecture's own scaling, ReLU and the
family's head are used (a SpineNet's 4 x 256 convs, a SpineNet-Mobile's 4
separable convs of the endpoint width), and ``--head_num_*`` and
``--activation`` override them. The figures come from
``search_space.cost_model`` (exact, no TensorFlow, instant): ``multiply_adds``
is the TensorFlow profiler's float operations over two, the convention of the
published figures (85.15B for SpineNet-49 at 640 px with 90 classes, as the
profiler counts the reference implementation; the paper says 85.4B).
"""

from __future__ import annotations

import dataclasses
import json

from absl import flags

from nas.cli_flags import FLAGS, UsageError

# The reference RetinaNet head when no model id gives one (docs/search_space.md#model-ids).
DEFAULT_HEAD = (4, 256)

flags.DEFINE_integer("input_size", 640, "Side of the square input image in pixels.", flag_values=FLAGS)
flags.DEFINE_integer("num_classes", 90, "Class logits per anchor (COCO category ids run to 90).", flag_values=FLAGS)
flags.DEFINE_integer(
    "head_num_convs", None, "Convs per head subnet (default: the model id's, or 4).", flag_values=FLAGS
)
flags.DEFINE_integer(
    "head_num_filters", None, "Width of the head convs (default: the model id's, or 256).", flag_values=FLAGS
)
flags.DEFINE_integer("num_anchors", 9, "Anchors per location (scales x aspect ratios).", flag_values=FLAGS)
flags.DEFINE_enum(
    "activation",
    None,
    ["relu", "swish", "hard_swish"],
    "Activation costed (default: the model id's, or relu); swish and hard-swish add float ops.",
    flag_values=FLAGS,
)

FLAGS_USED = (
    "arch",
    "model_id",
    "input_size",
    "num_classes",
    "head_num_convs",
    "head_num_filters",
    "num_anchors",
    "activation",
    "json",
)


def load_arch(spec: str | None, model_id: str | None):
    """The architecture of ``--arch``, with the scaling of ``--model_id`` if given.

    Raises:
      UsageError: --arch missing.
      ArchitectureError: an unknown preset or model id (or one of the other family), or a bad file.
    """
    from search_space import resolve_architecture
    from search_space.presets import scaling_for

    if not spec:
        raise UsageError("--arch is required: an architecture JSON file or preset:NAME")
    arch = resolve_architecture(spec)
    if model_id is not None:
        arch = arch.with_scaling(scaling_for(arch, model_id))
    return arch


def effective_model_id(spec: str | None, model_id: str | None) -> str | None:
    """``--model_id``, else the id a preset stands for (``preset:spinenet_mobile49S`` -> ``mobile49S``)."""
    from search_space import PRESET_PREFIX
    from search_space.presets import preset_model_id

    if model_id is not None or not spec or not spec.startswith(PRESET_PREFIX):
        return model_id
    return preset_model_id(spec[len(PRESET_PREFIX) :])


def head_size(model_id: str | None, arch=None) -> tuple[int, int, bool]:
    """(convs, filters, separable) from the flags, else the model id's, else the family's default head."""
    from search_space import SPINENET_MOBILE, model_preset

    if model_id is not None:
        preset = model_preset(model_id)
        convs, filters, separable = preset.head_num_convs, preset.head_num_filters, preset.head_separable
    elif arch is not None and arch.family == SPINENET_MOBILE:
        # docs/search_space.md#spinenet-mobile: 4 separable convs of the endpoint width.
        convs, filters, separable = 4, arch.scaling.endpoints_num_filters, True
    else:
        (convs, filters), separable = DEFAULT_HEAD, False
    if FLAGS.head_num_convs is not None:
        convs = FLAGS.head_num_convs
    if FLAGS.head_num_filters is not None:
        filters = FLAGS.head_num_filters
    return convs, filters, separable


def activation(model_id: str | None) -> str:
    """``--activation``, else the model id's (the one its published figures are measured with), else relu."""
    from search_space import model_preset

    if FLAGS.activation is not None:
        return FLAGS.activation
    return model_preset(model_id).activation if model_id is not None else "relu"


def describe(arch, convs: int, filters: int, separable: bool = False, act: str = "relu", model_id=None) -> dict:
    """The JSON-ready description of ``arch`` at the flags' input size and class count."""
    from search_space.cost_model import model_cost

    cost = model_cost(
        arch,
        input_size=FLAGS.input_size,
        num_classes=FLAGS.num_classes,
        head_num_convs=convs,
        head_num_filters=filters,
        num_anchors=FLAGS.num_anchors,
        activation=act,
        head_separable=separable,
    )
    levels = [
        {"level": lv, "height": h, "width": w, "endpoint_channels": c, "cls_channels": k, "box_channels": b}
        for (lv, h, w, c), (_, _, _, k, b) in zip(cost.endpoint_shapes, cost.head_shapes)
    ]
    return {
        "fingerprint": arch.fingerprint(),
        "family": arch.family,
        "model_id": model_id,
        "scaling": dataclasses.asdict(arch.scaling),
        "input_size": FLAGS.input_size,
        "num_classes": FLAGS.num_classes,
        "num_anchors": FLAGS.num_anchors,
        "head_num_convs": convs,
        "head_num_filters": filters,
        "head_separable": separable,
        "activation": act,
        "params": cost.params,
        "multiply_adds": cost.multiply_adds,
        "backbone_params": cost.backbone_params,
        "backbone_multiply_adds": cost.backbone_multiply_adds,
        "flops": cost.flops,
        "conv_multiply_adds": cost.conv_multiply_adds,
        "levels": levels,
        "blocks": [
            {**dataclasses.asdict(b), "parents": list(b.parents), "merged": list(b.merged)} for b in cost.blocks
        ],
    }


def _print_table(out: dict) -> None:
    s = out["scaling"]
    alpha = "no alpha step" if out["family"] == "spinenet_mobile" else f"alpha {s['resample_alpha']}"
    print(
        f"{out['family']} {out['fingerprint']}  model id {out['model_id'] or '-'}  "
        f"scaling {s['filter_size_scale']} / {alpha} / "
        f"{s['endpoints_num_filters']} endpoint filters / {s['block_repeats']} repeats"
    )
    separable = " separable" if out["head_separable"] else ""
    print(
        f"input {out['input_size']}x{out['input_size']}, {out['num_classes']} classes, {out['num_anchors']} anchors, "
        f"head {out['head_num_convs']} x {out['head_num_filters']}{separable}, {out['activation']}"
    )
    print(f"  params          {out['params']:>16,}  (backbone {out['backbone_params']:,})")
    print(
        f"  multiply-adds   {out['multiply_adds']:>16,}  (backbone {out['backbone_multiply_adds']:,}; "
        f"{out['multiply_adds'] / 1e9:.2f}B)"
    )
    print("  outputs:")
    for lv in out["levels"]:
        print(
            f"    P{lv['level']}  {lv['height']}x{lv['width']}x{lv['endpoint_channels']}  "
            f"class {lv['cls_channels']}  box {lv['box_channels']}"
        )
    print("  blocks:")
    # A block's own width multiplier and repeats get columns when some block has them.
    resources = any((b["width_multiplier"], b["repeats"]) != (1.0, s["block_repeats"]) for b in out["blocks"])
    extra = f" {'width':>5} {'reps':>4}" if resources else ""
    print(
        f"    {'idx':>3} {'level':>5} {'type':<10} {'parents':<8} {'size':>5} {'ch':>5}{extra} {'params':>11} "
        f"{'madds':>15}  note"
    )
    for b in out["blocks"]:
        parents = ",".join(map(str, b["parents"])) or "stem"
        notes = []
        if b["is_output"]:
            notes.append(f"P{b['level']}")
        if b["merged"]:
            notes.append("sums " + ",".join(map(str, b["merged"])))
        if not b["live"]:
            notes.append("dead: reaches no output, not built")
        extra = f" {'x' + format(b['width_multiplier'], 'g'):>5} {b['repeats']:>4}" if resources else ""
        print(
            f"    {b['index']:>3} {'L' + str(b['level']):>5} {b['block_fn']:<10} {parents:<8} {b['size']:>5} "
            f"{b['channels']:>5}{extra} {b['params']:>11,} {b['multiply_adds']:>15,}  {'; '.join(notes)}"
        )


def cmd_describe() -> int:
    """Prints the cost and shapes of the detector of ``--arch``."""
    model_id = effective_model_id(FLAGS.arch, FLAGS.model_id)
    arch = load_arch(FLAGS.arch, model_id)
    convs, filters, separable = head_size(model_id, arch)
    out = describe(arch, convs, filters, separable, activation(model_id), model_id)
    if FLAGS.json:
        print(json.dumps(out, indent=2))
    else:
        _print_table(out)
    return 0
