"""Training settings come from one place, ``TrainConfig``'s fields: what resuming must keep, the ``univar train``
options (flag, default and help, one to one, every one reaching its field) and the shipped recipe's JSON."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from pathlib import Path

from univar.model.config import FROZEN_ON_RESUME, TrainConfig
from univar.model.runs import TrainResult

# the list train.py spelt out before it was read from the fields' metadata
FROZEN_BEFORE = ("mode", "lam", "base", "batch_size", "lr", "weight_decay", "hidden", "dropout", "pooling",
                 "keep_base", "topic_alpha", "batching", "symmetric", "learnable_scale", "scale", "seed", "val_fold",
                 "exclude_folds", "max_length", "micro_batch", "val_select", "stance_weight", "stance_epochs",
                 "stance_layers", "stance_base", "stance_lr", "stance_max_length", "stance_tau", "stance_questions")
# the options of `univar train` that are not training settings (where it writes, what it reads, where it logs)
COMMAND_ONLY = {"data", "out_dir", "resume", "overwrite", "map_", "log", "stance_col"}
# a value other than the default for every setting with a flag (the test below checks that they differ)
NOT_DEFAULT = dict(mode="concat", lam=3, base="e5-small", epochs=7, batch_size=33, lr=0.5, hidden=65, dropout=0.25,
                   batching="class", pooling="attention", keep_base=0.7, topic_alpha=2.5, symmetric=True,
                   learnable_scale=True, val_fold=2, exclude_folds=[3, 0, 3], patience=4, val_select="mean-gain",
                   steps_per_epoch=9, max_length=77, micro_batch=5, seed=11, device="cpu", stance_weight=0.5,
                   stance_epochs=3.5, stance_layers=1)


def _default(f):
    return f.default_factory() if f.default is MISSING else f.default


def _cli_fields() -> dict:
    return {f.name: f for f in fields(TrainConfig) if f.metadata["cli"]}


def _train_options() -> dict:
    from typer.main import get_command

    import univar.cli  # noqa: F401  (registers every command on the app)
    from univar.commands import app

    return {p.name: p for p in get_command(app).commands["train"].params}


def test_frozen_on_resume_is_read_from_the_fields_and_is_what_it_was():
    assert FROZEN_ON_RESUME == FROZEN_BEFORE


def test_every_field_says_its_flag_help_and_whether_resume_keeps_it():
    for f in fields(TrainConfig):
        assert set(f.metadata) == {"cli", "help", "frozen_on_resume"}, f.name
        assert f.metadata["help"].strip(), f.name
        assert f.metadata["cli"] is None or f.metadata["cli"].startswith("--"), f.name


def test_train_options_and_config_fields_match_one_to_one():
    """A field with a flag and no option, an option with no field, or any drift of a flag, default or help fails."""
    options, settings = _train_options(), _cli_fields()
    assert set(options) - COMMAND_ONLY == set(settings)
    for name, f in settings.items():
        option = options[name]
        assert option.opts == [f.metadata["cli"]] and not option.secondary_opts, name
        assert option.help == f.metadata["help"], name
        default = _default(f)
        assert (list(option.default) if option.multiple else option.default) == default, name
        assert option.is_flag == isinstance(default, bool), name  # booleans are plain flags
    assert len({f.metadata["cli"] for f in settings.values()}) == len(settings)  # no two fields share a flag
    flags = {opt for option in options.values() for opt in option.opts}
    assert {"--out", "--resume", "--overwrite", "--map", "--log"} <= flags


def test_every_option_reaches_its_config_field(monkeypatch, tmp_path, capsys):
    import importlib

    from univar.cli import main

    train_module = importlib.import_module("univar.model.train")
    runs_module = importlib.import_module("univar.model.runs")

    assert set(NOT_DEFAULT) == set(_cli_fields())
    for name, f in _cli_fields().items():
        assert NOT_DEFAULT[name] != _default(f), name
    seen = {}

    def fake_train(table, cfg, out, resume=False, progress=True, report=None, overwrite=False):
        seen.update(cfg=cfg, resume=resume, overwrite=overwrite)
        return TrainResult(out=Path(out), best_epoch=0, best_score=None, base_score=None, epochs_run=0, history=[],
                           seconds=0.0)

    def fake_plan(out, cfg, resume=False, overwrite=False):  # there is no run in OUT to resume
        seen.update(planned=(resume, overwrite))
        return train_module.RunPlan(Path(out), Path(out))

    monkeypatch.setattr(train_module, "train_table", fake_train)
    monkeypatch.setattr(runs_module, "plan_run", fake_plan)
    monkeypatch.setattr(TrainConfig, "check", lambda self: None)  # these values together would not pass
    argv = ["train", "bundled:xstest", "--out", str(tmp_path / "m"), "--resume"]
    for name, value in NOT_DEFAULT.items():
        flag = _cli_fields()[name].metadata["cli"]
        if isinstance(value, bool):
            argv.append(flag)
        elif isinstance(value, list):
            argv += [arg for v in value for arg in (flag, str(v))]
        else:
            argv += [flag, str(value)]
    assert main(argv) == 0, capsys.readouterr().err
    cfg = seen["cfg"]
    assert seen["resume"] is True and seen["planned"] == (True, False) and seen["overwrite"] is False
    for name, value in NOT_DEFAULT.items():
        expected = sorted(set(value)) if name == "exclude_folds" else value
        assert getattr(cfg, name) == expected, name
    for f in fields(TrainConfig):  # the Python-only settings keep their defaults
        if not f.metadata["cli"]:
            assert getattr(cfg, f.name) == _default(f), f.name


def test_recipe_is_the_json_file_and_its_names_are_as_they_were():
    from univar.model import recipe

    data = json.loads(Path(recipe.__file__).with_name("recipe.json").read_text())
    assert recipe.VALUE_SOURCES == ("valuebench", "fulcra", "donotanswer", "xstest", "moralmachine")
    assert recipe.EXTRA_DATA == ("local-llms",)
    assert recipe.DEFAULT_DATA == tuple(f"bundled:{n}" for n in recipe.VALUE_SOURCES + recipe.EXTRA_DATA)
    before = dict(mode="set", lam=5, base="minilm+use-multilingual", topic_alpha=1.0, keep_base=1.5, epochs=30,
                  batch_size=256, lr=1e-3, weight_decay=0.01, hidden=512, dropout=0.1, pooling="mean",
                  batching="mask", symmetric=False, learnable_scale=False, scale=50.0, seed=0, val_fold=1,
                  exclude_folds=[0], patience=8)
    assert recipe.DEFAULT_CONFIG == data["config"] == before and list(recipe.DEFAULT_CONFIG) == list(before)
    # the same types too (1.0, not 1: the shipped univar.json records them)
    assert {k: type(v) for k, v in recipe.DEFAULT_CONFIG.items()} == {k: type(v) for k, v in before.items()}
    cfg = TrainConfig(**recipe.DEFAULT_CONFIG)
    for f in fields(TrainConfig):  # every value has its field's type
        value = getattr(cfg, f.name)
        if f.name in recipe.DEFAULT_CONFIG and value is not None:
            assert isinstance(value, type(_default(f)) if _default(f) is not None else float), f.name


def test_recipe_json_ships_as_package_data():
    import tomllib

    root = Path(__file__).resolve().parents[1]
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["univar"]
    assert "model/recipe.json" in data
