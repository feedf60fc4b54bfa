"""The schedule and augmentation axes through the pipeline's configuration: the schema,
setting names, the hyperparameters a job passes to train(), and the result records."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from lenet_cpp.layout import SCHEDULES, setting_name
from lenet_cpp.results import read_learning_rates, read_summary, summarize, write_summary
from lenet_cpp.setting import Hyperparameters, TrainData, grid_settings

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas" / "config.schema.yaml"
GRID = {"activation": ["relu"], "pooling": ["max"], "learning_rate": [0.05], "batch_size": [32]}
CONFIG = {
    "grid": {**GRID, "schedule": ["constant", "onecycle"], "augment": [False, True]},
    "epochs": 2,
    "seeds": [0],
    "schedule_options": {"warmup": 0.25, "final_learning_rate": 1e-4},
    "augment_ranges": {"rotate": 5, "translate": 1.5},
}


def validate(config: dict) -> dict:
    from snakemake.utils import validate as snakemake_validate

    config = copy.deepcopy(config)
    snakemake_validate(config, str(SCHEMA))
    return config


def test_the_schema_takes_the_new_axes_and_their_options() -> None:
    validate(CONFIG)
    schema_schedules = yaml.safe_load(SCHEMA.read_text())["properties"]["grid"]["properties"]
    assert tuple(schema_schedules["schedule"]["items"]["enum"]) == SCHEDULES


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"grid": {**GRID, "schedule": ["linear"]}}, "linear"),
        ({"grid": {**GRID, "augment": ["yes"]}}, "yes"),
        ({"schedule_options": {"warmup": 1.5}}, "1.5"),
        ({"schedule_options": {"milestone": [2]}}, "milestone"),
        ({"augment_ranges": {"rotate": 90}}, "90"),
        ({"augment_ranges": {"spin": 1}}, "spin"),
    ],
)
def test_the_schema_refuses_bad_values(change: dict, named: str) -> None:
    with pytest.raises(Exception, match=named):
        validate({**CONFIG, **change})


def test_default_settings_keep_their_names_and_new_axes_add_suffixes() -> None:
    settings = grid_settings(
        CONFIG["grid"],
        CONFIG["epochs"],
        schedule_options=CONFIG["schedule_options"],
        augment_ranges=CONFIG["augment_ranges"],
    )
    assert list(settings) == [
        "relu_max_lr0.05_bs32_mom0_wd0",
        "relu_max_lr0.05_bs32_mom0_wd0_aug",
        "relu_max_lr0.05_bs32_mom0_wd0_onecycle",
        "relu_max_lr0.05_bs32_mom0_wd0_onecycle_aug",
    ]
    assert list(grid_settings(GRID, 1)) == ["relu_max_lr0.05_bs32_mom0_wd0"]
    kwargs = settings["relu_max_lr0.05_bs32_mom0_wd0_onecycle_aug"].train_kwargs()
    assert kwargs["schedule"] == "onecycle" and kwargs["warmup"] == 0.25
    assert kwargs["final_learning_rate"] == 1e-4
    assert kwargs["augment"] == {"rotate": 5, "translate": 1.5}
    assert settings["relu_max_lr0.05_bs32_mom0_wd0"].train_kwargs()["augment"] is False
    with pytest.raises(ValueError, match="unknown schedule option"):
        grid_settings(GRID, 1, schedule_options={"milestone": [1]})
    assert (
        setting_name(
            dataset="mnist",
            activation="tanh",
            pooling="avg",
            learning_rate=0.1,
            batch_size=8,
            momentum=0,
            weight_decay=0,
            schedule="lecun1998",
        )
        == "tanh_avg_lr0.1_bs8_mom0_wd0_lecun1998"
    )


def test_hyperparameters_round_trip_through_a_record() -> None:
    hp = Hyperparameters(
        schedule="step",
        milestones=[2, 3],
        augment=True,  # type: ignore[arg-type]
        augment_ranges={"shear": 0.1},
    )
    assert hp.milestones == (2, 3)
    assert Hyperparameters.from_mapping(hp.as_dict()) == hp
    assert hp.train_kwargs()["milestones"] == (2, 3)


def test_a_job_records_schedule_rates_and_the_new_axes(tmp_path: Path) -> None:
    from lenet_cpp.job import run_setting
    from lenet_cpp.synthetic import write_synthetic_mnist

    data = TrainData.load(write_synthetic_mnist(tmp_path / "data", 128, 32))
    hp = Hyperparameters(
        learning_rate=0.05, batch_size=32, epochs=2, schedule="cosine", augment=True
    )
    record = run_setting(hp, [0], data, tmp_path / "run", job_threads=1)
    assert record["setting"]["schedule"] == "cosine" and record["setting"]["augment"] is True
    rates = read_learning_rates(tmp_path / "run" / "seed0" / "losses.csv")
    assert rates.shape == (8,) and rates[0] == 0.05 and rates[-1] < rates[0]
    write_summary(tmp_path / "summary.csv", summarize([record]))
    (row,) = read_summary(tmp_path / "summary.csv")
    assert row["schedule"] == "cosine" and row["augment"] == "True"
    assert row["setting"] == "relu_max_lr0.05_bs32_mom0_wd0_cosine_aug"


def test_the_command_line_passes_schedule_and_distortions_on() -> None:
    from lenet_cpp.cli import build_parser

    schedule = ["--schedule", "step", "--milestones", "2", "4", "--gamma", "0.5"]
    augment = ["--augment", "--augment-range", "rotate=5", "--augment-range", "shear=0"]
    args = build_parser().parse_args(["train", *schedule, *augment])
    values = {key: getattr(args, key) for key in Hyperparameters.field_names()}
    hp = Hyperparameters.from_mapping({**values, "augment_ranges": dict(args.augment_ranges)})
    kwargs = hp.train_kwargs()
    assert kwargs["schedule"] == "step" and kwargs["milestones"] == (2, 4)
    assert kwargs["gamma"] == 0.5 and kwargs["augment"] == {"rotate": 5.0, "shear": 0.0}
    plain = build_parser().parse_args(["train"])
    assert plain.schedule == "constant" and plain.augment is False
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--augment-range", "rotate"])


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (ROOT / "config").glob("*.yaml") if p.name != "test.yaml")
)
def test_experiment_configs_are_valid_layered_over_the_main_one(name: str) -> None:
    main = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    extra = yaml.safe_load((ROOT / "config" / name).read_text(encoding="utf-8"))
    config = validate({**main, **extra})
    settings = grid_settings(
        config["grid"],
        config["epochs"],
        schedule_options=config.get("schedule_options"),
        augment_ranges=config.get("augment_ranges"),
    )
    assert settings and all(hp.schedule in SCHEDULES for hp in settings.values())
