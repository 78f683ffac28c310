"""One configuration path (issue 11): the frozen config, its one target, one rebuild, one error model."""

import json
import os
import subprocess
import sys

import pytest

from experiments.overrides import config_to_dict
from experiments.registry import experiment_from_dict, experiment_names, get_experiment
from nas.search_runner import open_search, start_or_resume
from nas.user_errors import run_reporting_errors
from nas.workdir import Workdir, WorkdirError
from search_space import ArchitectureError, UserError
from tests.nas.test_search_loop import make_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("name", experiment_names())
def test_a_config_rebuilds_from_its_plain_form_unchanged(name):
    # The driver (Workdir.config) and the workers (the proxy evaluator) rebuild the config this one way.
    config = get_experiment(name)
    assert experiment_from_dict(json.loads(json.dumps(config_to_dict(config)))) == config


def test_a_resume_that_raises_the_target_records_it_in_the_frozen_config(tmp_path):
    wd = str(tmp_path / "s")
    start_or_resume(make_config(**{"search.max_trials": 2}), wd, quiet=True)
    summary = start_or_resume(None, wd, runtime_overrides={"search.max_trials": 4}, quiet=True)
    assert summary["completed"] == 4
    assert Workdir(wd).config().search.max_trials == 4  # one source: status and the next resume read it here
    from nas.commands.status import search_status

    assert search_status(wd)["max_trials"] == 4
    before = open(os.path.join(wd, "trials.jsonl")).read()
    assert start_or_resume(None, wd, quiet=True)["completed"] == 4  # continues to 4: nothing left to run
    assert open(os.path.join(wd, "trials.jsonl")).read().count('"event": "proposed"') == before.count(
        '"event": "proposed"'
    )


def test_only_runtime_keys_may_change_on_resume(tmp_path):
    wd = str(tmp_path / "s")
    start_or_resume(make_config(**{"search.max_trials": 1}), wd, quiet=True)
    config_before = open(os.path.join(wd, "config.json")).read()
    with pytest.raises(UserError, match="cannot change when a search continues"):
        with open_search(None, wd, runtime_overrides={"search.seed": 3}):
            pass
    assert open(os.path.join(wd, "config.json")).read() == config_before
    # An edit by hand outside the runtime keys is still refused by the checksum.
    data = json.loads(config_before)
    data["controller"]["policy_gradient"]["learning_rate"] = 0.5
    with open(os.path.join(wd, "config.json"), "w") as f:
        json.dump(data, f)
    with pytest.raises(WorkdirError, match="edited after the search began"):
        Workdir(wd).config()


def test_a_search_of_an_older_version_keeps_its_whole_config_checksum(tmp_path):
    # Searches begun before the runtime keys could change hold a checksum of the whole config.
    wd = str(tmp_path / "s")
    start_or_resume(make_config(**{"search.max_trials": 1}), wd, quiet=True)
    workdir = Workdir(wd)
    meta = json.load(open(workdir.meta_path))
    from nas.workdir import config_checksum

    # ... and may lack keys added since (they take their defaults): here search.snapshot_every.
    data = json.load(open(workdir.config_path))
    del data["search"]["snapshot_every"]
    json.dump(data, open(workdir.config_path, "w"))
    meta.pop("fixed_config_sha256")
    meta["config_sha256"] = config_checksum(data)
    json.dump(meta, open(workdir.meta_path, "w"))
    assert workdir.config().search.max_trials == 1
    start_or_resume(None, wd, runtime_overrides={"search.max_trials": 2}, quiet=True)
    assert workdir.config().search.max_trials == 2
    assert "fixed_config_sha256" in json.load(open(workdir.meta_path))
    assert "snapshot_every" not in json.load(open(workdir.config_path))["search"]  # only runtime keys written
    # The search command (a full config from the registry) continues it too.
    start_or_resume(make_config(**{"search.max_trials": 3}), wd, quiet=True)
    assert workdir.config().search.max_trials == 3


def test_read_only_commands_do_not_import_the_runner(tmp_path):
    wd = str(tmp_path / "s")
    start_or_resume(make_config(**{"search.max_trials": 2}), wd, quiet=True)
    code = (
        "import sys; from nas import cli\n"
        f"for argv in (['status', '--workdir={wd}'], ['export', '--workdir={wd}', '--output={tmp_path}/x']):\n"
        "    assert cli.main(['nas-search', *argv]) == 0, argv\n"
        "print(sorted(m for m in sys.modules if m in ('nas.search_runner', 'ray')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


class _OddInput(UserError):
    exit_status = 3


def test_the_error_ladder_catches_by_type(capsys):
    def raises(e):
        def fn():
            raise e

        return fn

    assert run_reporting_errors("prog", raises(ArchitectureError("block 3: level 9\nis out of range"))) == 2
    assert capsys.readouterr().err == "prog: error: block 3: level 9 is out of range\n"
    assert run_reporting_errors("prog", raises(_OddInput("odd"))) == 3
    assert run_reporting_errors("prog", raises(FileNotFoundError(2, "No such file", "/x/y"))) == 2
    assert capsys.readouterr().err.endswith("prog: error: /x/y: No such file\n")
    with pytest.raises(RuntimeError):  # a bug keeps its traceback
        run_reporting_errors("prog", raises(RuntimeError("bug")))


def test_every_project_error_a_user_can_cause_is_a_user_error():
    from controller.base import ControllerStateError
    from controller.config import ControllerConfigError
    from experiments.overrides import ConfigError
    from experiments.registry import UnknownExperimentError
    from nas.cli_flags import UsageError
    from nas.evaluators import EvaluatorError
    from nas.ray_connect import ExecutorError
    from nas.search_runner import SearchError
    from nas.trial_store import TrialLogError
    from proxy_trainer.data.dataset import DataError
    from proxy_trainer.training.errors import TrainingError

    for cls in (
        ControllerStateError,
        ControllerConfigError,
        ConfigError,
        UnknownExperimentError,
        UsageError,
        EvaluatorError,
        ExecutorError,
        SearchError,
        TrialLogError,
        WorkdirError,
        DataError,
        ArchitectureError,
    ):
        assert issubclass(cls, UserError) and cls.exit_status == 2, cls
    assert issubclass(TrainingError, UserError) and TrainingError.exit_status == 1


def test_nas_train_is_nas_search_train(capsys):
    from nas import cli, train_cli

    assert cli.main(["nas-search", "train", "--help"]) == 0
    search_help = capsys.readouterr().out
    assert train_cli.main(["nas-train", "--help"]) == 0
    train_help = capsys.readouterr().out
    assert search_help.replace("nas-search train", "nas-train") == train_help
    assert "--arch=STRING" in train_help and "--seed=INT" in train_help
    assert train_cli.main(["nas-train", "--experiment=synthetic_smoke", "--workdir=/nonexistent/x"]) == 2
    assert capsys.readouterr().err == "nas-train: error: --arch is required\n"
    assert cli.main(["nas-search", "train", "--experiment=synthetic_smoke", "--workdir=/x"]) == 2
    assert capsys.readouterr().err == "nas-search train: error: --arch is required\n"
