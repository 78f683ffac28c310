"""``nas-search data``: check an experiment's dataset and build its preprocessing cache once."""

from __future__ import annotations

import json
import sys

from nas.cli_flags import FLAGS, load_experiment_config

FLAGS_USED = ("experiment", "config_file", "params_override", "json")


def cmd_data() -> int:
    """Loads and checks the data, builds (or verifies) the cache, prints the split."""
    from nas.quiet_tf import import_tensorflow_quietly

    import_tensorflow_quietly()
    from proxy_trainer.data.pipeline import prepare_data

    config = load_experiment_config()
    config.require_data()
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if not FLAGS.json else None
    data = prepare_data(config.data, config.model.input_size, log=log)
    out = {
        "experiment": config.name,
        "source": config.data.source,
        "input_size": data.input_size,
        "num_classes": data.num_classes,
        "num_train_images": data.num_train_images,
        "num_eval_images": data.num_eval_images,
        "cache": getattr(data.cache, "directory", None),
    }
    if FLAGS.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"{config.name}: {out['num_train_images']} training and {out['num_eval_images']} held-out images, "
            f"{out['num_classes']} classes, input {out['input_size']} px; cache {out['cache']}"
        )
    return 0
