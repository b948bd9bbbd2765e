"""Value ranges are declared next to their keys and checked in one place."""

from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from dlrun.config import ranges
from dlrun.config.options import SCHEMAS
from dlrun.config.options.trainer import TrainerConfig
from dlrun.config.ranges import Range, above, at_least, between
from dlrun.config.schema import Config
from dlrun.errors import DlrunError


@pytest.mark.parametrize(
    ("declared", "inside", "outside", "text"),
    [
        (at_least(1), [1, 2, 10**9], [0, -1, float("nan")], ">= 1"),
        (above(0), [1e-9, 3.0], [0, -0.5], "> 0"),
        (between(0, 1, high_open=True), [0, 0.5, 0.999], [1, -0.1, 1.5], "0 <= x < 1"),
        (between(0, 1, low_open=True, high_open=True), [0.5], [0, 1], "0 < x < 1"),
        (between(0, 30), [0, 30], [-1, 31], "0 <= x <= 30"),
    ],
)
def test_a_range_allows_what_its_text_says(declared, inside, outside, text):
    allowed: Range = declared[ranges.KEY]
    assert allowed.text() == text
    assert all(allowed.allows(v) for v in inside)
    assert not any(allowed.allows(v) for v in outside)


def test_check_walks_nested_schemas_and_list_items():
    cfg = OmegaConf.create({"trainer": {"epochs": 0}})
    with pytest.raises(DlrunError, match=r"^trainer.epochs=0 is out of range: use >= 1.$"):
        ranges.check(cfg, Config, "")
    mlp = SCHEMAS["model"]["mlp"]
    with pytest.raises(DlrunError, match=r"model.dropout=\[0.1, 1.5\] has 1.5, which is out"):
        ranges.check(OmegaConf.create({"dropout": [0.1, 1.5]}), mlp, "model")


def test_null_passes_and_the_message_says_what_null_means():
    ranges.check(OmegaConf.create({"batch_size": None}), TrainerConfig, "trainer")
    with pytest.raises(DlrunError, match=r"use null \(all\) or >= 1"):
        ranges.check(OmegaConf.create({"max_train_samples": 0}), TrainerConfig, "trainer")


def test_every_declared_range_is_on_a_numeric_key():
    """A range on a string or a bool key would never be checked: a typo in a schema."""
    for group, schemas in {**SCHEMAS, "trainer": {"default": TrainerConfig}}.items():
        for name, schema in schemas.items():
            for spec in dataclasses.fields(schema):
                if ranges.KEY in spec.metadata:
                    assert any(t in str(spec.type) for t in ("int", "float")), (group, name)


def test_the_defaults_of_every_option_are_within_range():
    from conftest import compose

    from dlrun.config.groups import options
    from dlrun.config.schema import check_ranges

    for group in ("model", "dataset", "optimizer", "init", "scheduler"):
        for option in options(group):
            check_ranges(compose(f"{group}={option}"))
