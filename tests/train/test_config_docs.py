"""`sepit train` needs --config, --print-config shows the resolved config, and docs/configuration.md is the
text generated from the dataclasses (so a new field without a docstring or a changed default fails here)."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from sepit.cli import main
from sepit.config_docs import DOC_PATH, field_docs, markdown
from sepit.train.config import TrainConfig


def test_configuration_page_is_generated_from_the_dataclasses():
    assert DOC_PATH.read_text() == markdown(), "docs/configuration.md is stale: run python3 -m sepit.config_docs"


def test_every_field_is_listed_with_its_default():
    text = markdown()
    cfg = TrainConfig()
    for name in ("seed", "lora.r", "stage2.optim.lr", "stage0.data.max_residues", "moe.aux_coef"):
        value = cfg
        for part in name.split("."):
            value = getattr(value, part)
        assert f"| `{name}` |" in text and f"`{value}`" in text.split(f"| `{name}` |")[1].split("\n")[0]


def test_a_field_without_a_docstring_is_an_error():
    @dataclasses.dataclass
    class Spec:
        documented: int = 1
        """A documented field."""
        bare: int = 2

    assert field_docs(Spec) == {"documented": "A documented field."}
    with pytest.raises(ValueError, match="Spec.bare has no docstring"):
        markdown(Spec)


def test_train_requires_a_config(capsys):
    assert main(["train", "--stage", "1"]) == 2
    assert "--config is required" in capsys.readouterr().err


def test_print_config_applies_overrides(capsys):
    assert main(["train", "--config", "demo", "--print-config", "--stage1.optim.lr", "3e-4", "seed=7",
                 "--data", "some/ds"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["stage1"]["optim"]["lr"] == pytest.approx(3e-4) and cfg["seed"] == 7
    assert cfg["dataset"] == "some/ds" and cfg["name"] == "demo" and cfg["llm"]["name"] == "smollm2-135m-instruct"
    assert main(["train", "--config", "demo", "--print-config", "stage1.optim.lrr=1"]) == 2
    assert "unknown key" in capsys.readouterr().err
