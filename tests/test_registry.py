"""The name -> builder registries: building, unknown names, duplicates, schema checks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from omegaconf import MISSING, DictConfig, OmegaConf

import dlrun.builtins  # noqa: F401  (registers the built-in options)
from dlrun.config.registry import DATASETS, INITS, MODELS, OPTIMIZERS, REGULARIZERS, Registry
from dlrun.errors import DlrunError


def fresh_registry() -> Registry:
    # A unique group keeps the schemas these tests store out of each other's way in the
    # process-wide ConfigStore.
    return Registry(f"thing{uuid.uuid4().hex[:8]}")


def test_builds_registered_builder_from_config_name() -> None:
    things = Registry("thing")
    calls = []

    @things.register("widget")
    def widget(cfg: DictConfig, extra: int, *, flag: bool) -> tuple:
        calls.append(cfg)
        return ("widget", cfg.size, extra, flag)

    @things.register("gadget")
    def gadget(cfg: DictConfig) -> str:
        return "gadget"

    assert things.build({"name": "widget", "size": 3}, 7, flag=True) == ("widget", 3, 7, True)
    assert things.build(OmegaConf.create({"name": "gadget"})) == "gadget"
    assert len(calls) == 1
    assert isinstance(calls[0], DictConfig)
    assert things.names() == ["gadget", "widget"]
    assert "widget" in things
    assert "sprocket" not in things
    assert things.get("widget").builder is widget
    assert things.get("widget").schema is None


def test_register_returns_the_builder_unchanged() -> None:
    things = Registry("thing")

    class Widget:
        def __init__(self, cfg: DictConfig) -> None:
            self.cfg = cfg

    decorated = things.register("widget")(Widget)
    assert decorated is Widget
    built = things.build({"name": "widget", "x": 1})
    assert isinstance(built, Widget)
    assert built.cfg.x == 1


def test_config_without_name_is_an_error() -> None:
    things = Registry("thing")
    things.register("widget")(lambda cfg: cfg)
    with pytest.raises(DlrunError, match=r"no `name` key.*thing\.name"):
        things.build({"size": 3})


def test_unknown_name_lists_known_names_and_suggests_closest() -> None:
    things = Registry("thing")
    things.register("widget")(lambda cfg: "w")
    things.register("gadget")(lambda cfg: "g")
    with pytest.raises(DlrunError) as info:
        things.build({"name": "widgit"})
    message = str(info.value)
    assert "Unknown thing 'widgit'" in message
    assert "Did you mean 'widget'?" in message
    assert "gadget, widget" in message


def test_unknown_name_without_close_match_gives_no_suggestion() -> None:
    things = Registry("thing")
    things.register("widget")(lambda cfg: "w")
    with pytest.raises(DlrunError) as info:
        things.get("zzzzzzzz")
    assert "Did you mean" not in str(info.value)
    assert "widget" in str(info.value)


def test_empty_registry_says_none_known() -> None:
    with pytest.raises(DlrunError, match=r"\(none\)"):
        Registry("thing").get("anything")


def test_real_models_registry_suggests_lenet_for_typo() -> None:
    with pytest.raises(DlrunError) as info:
        MODELS.build({"name": "lenett"})
    message = str(info.value)
    assert "Did you mean 'lenet'?" in message
    assert "lenet" in message and "mlp" in message
    assert "@MODELS.register" in message


def test_builtin_registries_hold_the_shipped_options() -> None:
    assert {"lenet", "mlp"} <= set(MODELS.names())
    assert {"digits", "fashion_mnist", "mnist"} <= set(DATASETS.names())
    assert {"sgd", "adam"} <= set(OPTIMIZERS.names())
    assert {"default", "xavier_uniform"} <= set(INITS.names())
    assert {"l1", "l2", "dropout", "grad_clip", "early_stopping"} <= set(REGULARIZERS.names())


def test_registering_same_name_twice_is_an_error() -> None:
    things = Registry("thing")

    @things.register("widget")
    def first(cfg: DictConfig) -> str:
        return "first"

    def second(cfg: DictConfig) -> str:
        return "second"

    with pytest.raises(DlrunError) as info:
        things.register("widget")(second)
    message = str(info.value)
    assert "'widget' is registered twice" in message
    assert "first" in message and "second" in message
    # The first registration stays in place.
    assert things.build({"name": "widget"}) == "first"


@dataclass
class WidgetConfig:
    name: str = MISSING
    size: int = MISSING
    ratio: float = 0.5
    enabled: bool = True


def _schema_registry() -> Registry:
    things = fresh_registry()

    @things.register("widget", schema=WidgetConfig)
    def widget(cfg: WidgetConfig) -> WidgetConfig:
        return cfg

    return things


def test_schema_fills_defaults_and_converts_values() -> None:
    things = _schema_registry()
    cfg = things.build({"name": "widget", "size": "4"})
    assert cfg.size == 4 and isinstance(cfg.size, int)
    assert cfg.ratio == 0.5
    assert cfg.enabled is True


def test_schema_rejects_misspelt_key_and_names_it() -> None:
    things = _schema_registry()
    with pytest.raises(DlrunError) as info:
        things.build({"name": "widget", "size": 4, "raito": 0.1})
    message = str(info.value)
    assert "Invalid" in message and "'widget'" in message
    assert "raito" in message


def test_schema_rejects_wrong_type_and_names_key() -> None:
    things = _schema_registry()
    with pytest.raises(DlrunError) as info:
        things.build({"name": "widget", "size": "large"})
    message = str(info.value)
    assert "size" in message
    assert "large" in message
    with pytest.raises(DlrunError, match="enabled"):
        things.build({"name": "widget", "size": 1, "enabled": "perhaps"})


def test_real_model_schema_rejects_misspelt_key() -> None:
    from dlrun.data.dataset import DatasetMeta

    meta = DatasetMeta(task="classification", input_shape=(1, 28, 28), num_classes=10)
    cfg = {"name": "lenet", "activation": "relu", "pool": "max", "batch_norm": False}
    MODELS.build(cfg, meta)  # valid as given
    with pytest.raises(DlrunError, match="batchnorm"):
        MODELS.build({**cfg, "batchnorm": True}, meta)


def test_config_leaving_out_a_required_key_names_it() -> None:
    from dlrun.data.dataset import DatasetMeta

    meta = DatasetMeta(task="classification", input_shape=(1, 28, 28), num_classes=10)
    with pytest.raises(DlrunError, match=r"model\.activation, model\.batch_norm, model\.pool"):
        MODELS.build({"name": "lenet"}, meta)
