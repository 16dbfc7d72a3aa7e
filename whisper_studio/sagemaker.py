"""Run the training entry unmodified as a SageMaker (Hugging Face estimator) training script.

SageMaker puts input channels under SM_CHANNEL_<NAME>, expects the model in SM_MODEL_DIR and other outputs in
SM_OUTPUT_DATA_DIR, and passes hyperparameters as `--name value` arguments (booleans as the strings
"True"/"False"). This module maps that onto `python -m whisper_studio train`: the `train` channel is read as a
local Common Voice release, the run folder lives under the output dir, and the adapter is copied to the model
dir, which SageMaker uploads to S3 as model.tar.gz.
"""

from __future__ import annotations

import argparse
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from whisper_studio import runfolder


@dataclass(frozen=True)
class SageMakerEnv:
    model_dir: Path
    output_data_dir: Path
    channels: dict[str, Path] = field(default_factory=dict)
    num_gpus: int = 0
    current_host: str | None = None


def environment() -> SageMakerEnv | None:
    """The SageMaker training environment, or None when not running inside a SageMaker training job."""
    if "SM_MODEL_DIR" not in os.environ and "SM_TRAINING_ENV" not in os.environ:
        return None
    channels = {
        key[len("SM_CHANNEL_") :].lower(): Path(value)
        for key, value in os.environ.items()
        if key.startswith("SM_CHANNEL_") and value
    }
    return SageMakerEnv(
        model_dir=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")),
        output_data_dir=Path(os.environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")),
        channels=channels,
        num_gpus=int(os.environ.get("SM_NUM_GPUS") or 0),
        current_host=os.environ.get("SM_CURRENT_HOST"),
    )


def normalize_argv(argv: list[str], bool_flags: dict[str, str | tuple[str, str]]) -> list[str]:
    """Turn SageMaker's `--flag True|False` into argparse switches.

    `bool_flags` maps a hyperparameter name as SageMaker passes it (e.g. `--load-in-8bit` or `--load_in_8bit`)
    to the switch that means False (e.g. `--no-8bit`; True then simply drops the pair), or to a pair
    (switch for True, switch for False) when True is not the default (`("--8bit=on", "--no-8bit")`).
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        key = arg.replace("_", "-")
        if key in bool_flags and i + 1 < len(argv) and argv[i + 1].lower() in ("true", "false"):
            switches = bool_flags[key]
            on, off = switches if isinstance(switches, tuple) else (None, switches)
            chosen = off if argv[i + 1].lower() == "false" else on
            if chosen:
                out.append(chosen)
            i += 2
            continue
        # SageMaker spells hyperparameters as given in the estimator; accept snake_case for our kebab-case flags.
        out.append(key if arg.startswith("--") else arg)
        i += 1
    return out


def apply_defaults(args: argparse.Namespace, env: SageMakerEnv) -> argparse.Namespace:
    """Fill in what SageMaker provides and the user did not pass: data from the `train` channel, the run folder."""
    channel = env.channels.get("train") or env.channels.get("training")
    if channel is not None and getattr(args, "source", None) in (None, "demo") and not getattr(args, "path", None):
        # A channel is the extracted Common Voice release (cv-corpus-*/<locale>/...) copied from S3.
        args.source = "cv-folder"
        args.path = str(channel)
    if not getattr(args, "out", None):
        args.out = str(env.output_data_dir / "run")
    return args


def publish(run_dir: str | os.PathLike, env: SageMakerEnv) -> None:
    """Copy the adapter into SM_MODEL_DIR (uploaded as model.tar.gz) and the run's records into the output dir."""
    run_dir = Path(run_dir)
    adapter = run_dir / runfolder.ADAPTER
    env.model_dir.mkdir(parents=True, exist_ok=True)
    if adapter.is_dir():
        shutil.copytree(adapter, env.model_dir, dirs_exist_ok=True)
    env.output_data_dir.mkdir(parents=True, exist_ok=True)
    for name in (runfolder.CONFIG, runfolder.STATUS, runfolder.METRICS, runfolder.LOG, runfolder.EVAL):
        src = run_dir / name
        if src.is_file() and src.resolve().parent != env.output_data_dir.resolve():
            shutil.copy2(src, env.output_data_dir / name)
