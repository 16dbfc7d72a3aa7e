import json

import pytest

from whisper_studio.config import LoraSpec, SourceConfig, TrainConfig
from whisper_studio.errors import ConfigError


def test_defaults_are_the_recipe():
    cfg = TrainConfig()
    assert (cfg.lora.rank, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.bias) == (32, 64, 0.05, "none")
    assert cfg.lora.target_modules == ("q_proj", "v_proj")
    assert cfg.load_in_8bit is True


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lora": {"rank": 0}}, "rank"),
        ({"lora": {"alpha": None}}, "alpha is missing"),
        ({"lora": {"target_modules": ["q_proj", "qkv"]}}, "Unknown LoRA target module(s) qkv"),
        ({"lora": {"dropout": 1.5}}, "dropout"),
        ({"epochs": -1}, "Epochs"),
        ({"epochs": 0}, "Epochs"),
        ({"learning_rate": 0}, "Learning rate"),
        ({"batch_size": 0}, "Batch size"),
        ({"batch_size": 16, "max_train_samples": 8}, "larger than the 8 training clips"),
        ({"precision": "fp8"}, "Precision"),
        ({"task": "summarize"}, "Task"),
        ({"source": {"kind": "cv-folder", "language": "mr"}}, "path of a release folder"),
        ({"source": {"kind": "mdc", "language": "mr"}}, "Mozilla Data Collective dataset id"),
        ({"source": {"kind": "ftp", "language": "mr"}}, "Unknown data source"),
        ({"model": " "}, "Choose a model"),
    ],
)
def test_invalid_settings_are_refused_with_a_specific_message(kwargs, message):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(kwargs)
    assert message in str(err.value)


def test_batch_larger_than_loaded_data():
    cfg = TrainConfig(batch_size=8)
    cfg.check_data_size(100)
    with pytest.raises(ConfigError, match="larger than the 5 training clips"):
        cfg.check_data_size(5)


def test_round_trip_through_json(tmp_path):
    cfg = TrainConfig(
        model="bundled/whisper-tiny.en",
        language="en",
        source=SourceConfig(kind="cv-folder", language="en", path="/data/cv/en"),
        lora=LoraSpec(rank=8, alpha=16, target_modules=("q_proj", "k_proj", "v_proj")),
        epochs=2,
        max_train_samples=64,
        load_in_8bit=False,
    )
    path = cfg.save(tmp_path)
    assert path.name == "config.json"
    data = json.loads(path.read_text())
    assert data["lora"]["target_modules"] == ["q_proj", "k_proj", "v_proj"]
    assert TrainConfig.load(tmp_path) == cfg


def test_source_language_follows_the_run_language():
    cfg = TrainConfig(language="hi", source=SourceConfig(kind="demo", language="mr"))
    assert cfg.source.language == "hi"


def test_load_reports_unknown_keys_and_bad_files(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model": "x", "rnak": 3}))
    with pytest.raises(ConfigError, match="rnak"):
        TrainConfig.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.load(tmp_path)
    with pytest.raises(ConfigError, match="No run configuration"):
        TrainConfig.load(tmp_path / "missing")
