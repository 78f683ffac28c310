"""Typed, frozen experiment configuration.

Configuration flows one way: a registered experiment builds an
``ExperimentConfig``; strict overrides (``experiments.overrides``) replace
fields; ``validate()`` checks cross-field rules; factories build objects from
it. Sections are added by the parts of the system that own them.
"""

from __future__ import annotations

import dataclasses

from controller.config import ControllerConfig
from controller.reward import RewardConfig
from experiments.overrides import ConfigError
from experiments.search_config import SearchConfig
from proxy_trainer.data.config import DataConfig
from proxy_trainer.detector.config import ModelConfig
from proxy_trainer.training.config import TrainerConfig
from search_space import ArchitectureError, SearchSpace, model_preset


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: what is searched, and (in later sections) how.

    Attributes:
      name: the registered name.
      description: one line for listings.
      search_space: the SpineNet search space (its ``scaling`` is the one
        architectures are trained with).
      model: the proxy detector (RetinaNet) built for each architecture.
      data: the proxy's data: source, reward split, cache, augmentation.
      trainer: how each architecture is trained and evaluated.
      controller: the search algorithm and its hyperparameters.
      reward: how a trial's metrics become the controller's reward.
      search: how the search runs (trials, slots, resources, evaluator).
    """

    name: str
    description: str = ""
    search_space: SearchSpace = SearchSpace()
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    trainer: TrainerConfig = TrainerConfig()
    controller: ControllerConfig = ControllerConfig()
    reward: RewardConfig = RewardConfig()
    search: SearchConfig = SearchConfig()

    def validate(self) -> None:
        """Raises ValueError naming the first invalid or inconsistent field.

        The data paths of a COCO experiment may still be empty here (the
        registered experiment cannot know them); ``require_data()`` checks
        them before anything is trained.

        Raises:
          ArchitectureError: an invalid search space.
          ConfigError: any other invalid field (the sections' ValueErrors,
            reworded as ConfigError so the command lines report them in one line).
        """
        try:
            self._validate()
        except (ConfigError, ArchitectureError):
            raise
        except ValueError as e:
            raise ConfigError(str(e)) from None

    def _validate(self) -> None:
        self.search_space.validate()
        self.model.validate()
        self.trainer.validate()
        data = self.data
        if data.source == "coco":
            # Everything but the user-given paths, which are checked by require_data().
            data = dataclasses.replace(
                data, annotation_file=data.annotation_file or "-", image_dir=data.image_dir or "-"
            )
        data.validate()
        if self.model.model_id is not None:
            preset_scaling = model_preset(self.model.model_id).scaling
            if preset_scaling != self.search_space.scaling:
                raise ConfigError(
                    f"model.model_id {self.model.model_id!r} trains with scaling {preset_scaling}, but "
                    f"search_space.scaling is {self.search_space.scaling}; make them agree, or set "
                    "model.model_id=null to train with the search space's scaling"
                )
        if data.source == "synthetic" and self.model.num_classes < data.synthetic.num_classes:
            raise ConfigError(
                f"model.num_classes is {self.model.num_classes} but data.synthetic.num_classes is "
                f"{data.synthetic.num_classes}; allowed model.num_classes >= {data.synthetic.num_classes}"
            )
        self.controller.validate()
        self.reward.validate()
        self.search.validate()
        rungs = self.fidelity_rungs()
        if self.search.fidelity == "asha" and self.trainer.train_steps == 0 and rungs[-1] != self.trainer.epochs:
            raise ConfigError(
                f"search.rungs {list(rungs)} must end at trainer.epochs ({self.trainer.epochs:g}): the last rung "
                "is the whole schedule"
            )
        if self.search.fidelity == "asha" and len(rungs) < 2:
            raise ConfigError(f"search.rungs {list(rungs)}: search.fidelity=asha needs at least two rungs")

    def fidelity_rungs(self) -> tuple[float, ...]:
        """The epochs at which a multi-fidelity search evaluates a trial (``search.rungs``, or its default).

        The default is 1/10, 1/2 and all of ``trainer.epochs``: 0.5, 2.5 and 5
        epochs for the COCO proxy, 1, 5 and 10 for synthetic_smoke (chosen by
        ``bench/bench_asha.py`` on the synthetic_smoke stand-in, where a 10th
        of the schedule ranked architectures better than a 5th: see the
        README's *Multi-fidelity search*). With ``trainer.train_steps`` set,
        the last rung means the end of those steps whatever its number.
        """
        if self.search.rungs:
            return tuple(float(r) for r in self.search.rungs)
        epochs = float(self.trainer.epochs)
        return (epochs / 10, epochs / 2, epochs)

    def with_rungs(self, rungs: tuple[float, ...] | None = None) -> ExperimentConfig:
        """This config with ``search.rungs`` written out (``rungs``, or ``fidelity_rungs()``) when a
        multi-fidelity search leaves them to the default.

        A new search freezes its rungs this way, so that a later change of
        the default never changes the rungs of a search already running.
        """
        if self.search.fidelity != "asha" or self.search.rungs:
            return self
        resolved = tuple(rungs) if rungs is not None else self.fidelity_rungs()
        return dataclasses.replace(self, search=dataclasses.replace(self.search, rungs=resolved))

    def require_data(self) -> None:
        """Raises ConfigError unless the data can be looked for (COCO paths given)."""
        if self.data.source == "coco" and not (self.data.annotation_file and self.data.image_dir):
            raise ConfigError(
                f"experiment {self.name!r} trains on COCO but data.annotation_file and data.image_dir are not "
                "both set; pass them, e.g. --params_override=data.annotation_file=/data/coco/annotations/"
                "instances_train2017.json,data.image_dir=/data/coco/train2017 (or a --config_file)"
            )
