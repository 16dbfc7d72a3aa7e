import json

import pytest

from whisper_studio.config import LoraSpec, SourceConfig, TrainConfig
from whisper_studio.errors import ConfigError


def test_defaults_are_the_recipe():
    cfg = TrainConfig()
    assert (cfg.lora.rank, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.bias) == (32, 64, 0.05, "none")
    assert cfg.lora.target_modules == ("q_proj", "v_proj")
    # 12.4: 8-bit where it pays (CUDA), full precision on a CPU; the recipe's 8-bit is `--8bit on`.
    assert cfg.load_in_8bit == "auto"
    assert cfg.probe_clips == 16 and cfg.final_eval_clips is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lora": {"rank": 0}}, "rank"),
        ({"lora": {"alpha": None}}, "alpha is missing"),
        ({"lora": {"target_modules": ["q_proj", "qkv"]}}, "Unknown LoRA target module(s) qkv"),
        ({"lora": {"dropout": 1.5}}, "dropout"),
        ({"epochs": -1}, "Epochs"),
        ({"epochs": 0}, "Epochs"),
        ({"epochs": float("nan")}, "Epochs must be a positive, finite number"),
        ({"epochs": float("inf")}, "Epochs must be a positive, finite number"),
        ({"learning_rate": "abc"}, "Learning rate must be a number between 0 and 1"),
        ({"learning_rate": float("nan")}, "Learning rate must be a number"),
        ({"learning_rate": True}, "Learning rate must be a number"),
        ({"lora": {"rank": 1e9}}, "LoRA rank must be a whole number"),
        ({"lora": {"dropout": "x"}}, "dropout"),
        ({"load_in_8bit": "sometimes"}, "8-bit loading must be auto, on"),
        ({"probe_clips": -1}, "Probe clips"),
        ({"final_eval_clips": -3}, "Final evaluation clips"),
        ({"batch_size": 2.5}, "Batch size"),
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


def test_lora_rank_is_bounded_by_the_model_width():
    LoraSpec(rank=64).check_width(64, "tiny")
    with pytest.raises(ConfigError, match=r"LoRA rank 1000000000 is larger than tiny's width \(64\)"):
        LoraSpec(rank=1_000_000_000).check_width(64, "tiny")


@pytest.mark.parametrize("kwargs, message", [
    ({"max_steps": -5}, "Max steps must be a whole number of at least 1"),
    ({"max_steps": 0}, "Max steps"),
    ({"save_steps": 0}, "Save steps must be a whole number of at least 1"),
    ({"time_limit_s": -1}, "time limit must be a number of seconds of at least 0"),
    ({"time_limit_s": float("nan")}, "time limit"),
])
def test_run_limits_are_refused_with_a_message(kwargs, message):
    from whisper_studio.config import check_run_limits

    with pytest.raises(ConfigError, match=message):
        check_run_limits(**kwargs)
    check_run_limits(max_steps=1, save_steps=1, time_limit_s=0.0)


def test_resolve_8bit_auto_is_on_for_cuda_off_on_cpu():
    import importlib.util

    from whisper_studio.config import resolve_8bit

    on, why = resolve_8bit("auto", "cpu")
    assert on is False and "CPU" in why and "1.02 vs 1.27 samples/s" in why
    on, why = resolve_8bit("auto", "cuda:0")
    assert on is (importlib.util.find_spec("bitsandbytes") is not None) and "GPU" in why
    assert resolve_8bit(True, "cpu") == (True, "base in 8-bit, as asked")
    assert resolve_8bit(False, "cuda:0")[0] is False
    assert TrainConfig(load_in_8bit="on").load_in_8bit is True and TrainConfig(load_in_8bit="off").load_in_8bit is False
    assert TrainConfig.from_dict({"load_in_8bit": True}).load_in_8bit is True  # config.json of older runs


def test_8bit_flags_and_command_preview():
    from whisper_studio import options
    from whisper_studio.cli import build_parser
    from whisper_studio.cli.train import config_from_args

    def parsed(*flags):
        return config_from_args(build_parser().parse_args(["train", *flags]))[0]

    assert parsed().load_in_8bit == "auto"
    assert parsed("--no-8bit").load_in_8bit is False and parsed("--8bit", "off").load_in_8bit is False
    assert parsed("--8bit", "on").load_in_8bit is True and parsed("--8bit", "auto").load_in_8bit == "auto"
    assert "--8bit on" in options.command_line(TrainConfig(load_in_8bit=True))
    assert "--no-8bit" in options.command_line(TrainConfig(load_in_8bit=False))
    assert "8bit" not in options.command_line(TrainConfig())
    assert parsed("--final-eval-clips", "0", "--probe-clips", "4").final_eval_clips == 0
