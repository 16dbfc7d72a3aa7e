"""`python -m whisper_studio train`: flags (or a --config file) -> TrainConfig -> train.run_training.

The TrainConfig flags come from the option schema (config.py metadata, walked by options.py); the flags
here are the run's own, never saved in config.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from whisper_studio import options, process, runfolder, sagemaker
from whisper_studio.config import TrainConfig, check_run_limits
from whisper_studio.errors import ConfigError, JobError, StudioError
from whisper_studio.trainer import DEFAULT_SAVE_STEPS


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="fine-tune a Whisper model with LoRA into a run folder",
        description="Fine-tune Whisper with LoRA (base in 8-bit by default). Give a --config file (a run "
        "folder's config.json) or the settings as flags (flags override the file); --resume RUN_DIR continues "
        "a run from its last checkpoint.",
    )
    p.add_argument("--config", metavar="FILE", help="a TrainConfig JSON file (e.g. RUN_DIR/config.json)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue RUN_DIR from its last checkpoint, same config")
    p.add_argument(options.OUT_FLAG, dest="out", metavar="RUN_DIR", help="the run folder (default: the config's "
                   "output_dir, else a new folder under the runs directory)")
    options.add_arguments(p)
    p.add_argument("--no-eval", action="store_true", help="skip the base-vs-adapted evaluation at the end")
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps (overrides --epochs; not saved in config.json)")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="end training at the first step past this many seconds; adapter and evaluation follow")
    p.add_argument("--save-steps", type=int, help=f"checkpoint every N steps (default: each epoch, at most every {DEFAULT_SAVE_STEPS})")
    p.add_argument("--secrets-stdin", action="store_true",
                   help='read one JSON line {"mdc_api_key": ...} from stdin (how the app passes a key: never in '
                   "the environment, the command line or a file)")
    p.set_defaults(func=_cli_train)


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, Path]:
    """The TrainConfig and run folder that the command line describes."""
    from whisper_studio.paths import runs_dir

    data: dict = {}
    config_path = None
    if args.config:
        config_path = Path(args.config)
        data = TrainConfig.load(config_path).to_dict()
    options.apply_args(data, args)
    if "source" in data and "language" in data:
        data["source"].setdefault("language", data["language"])
    elif "language" in data:
        data.setdefault("source", {})["language"] = data["language"]
    cfg = TrainConfig.from_dict(data)

    if args.out:
        run_dir = Path(args.out)
    elif cfg.output_dir:
        run_dir = Path(cfg.output_dir)
    elif config_path is not None and (config_path.parent / runfolder.STATUS).exists():
        run_dir = config_path.parent  # a run folder's own config.json
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        try:
            root = runs_dir()
        except OSError as exc:
            raise JobError(f"Cannot create the runs folder: {exc.strerror or exc} ({exc.filename}). "
                           "Set WHISPER_STUDIO_RUNS or pass --out.") from None
        run_dir = root / f"{stamp}-{cfg.language}-{Path(cfg.model).name}"
    return cfg, run_dir


def _quiet_library_warnings() -> None:
    """train.log is read by people in the UI: keep out warnings about the libraries' own internals."""
    import logging
    import warnings

    # bitsandbytes looks for optional CPU 4-bit kernels we never use; transformers deprecates a name peft calls.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)


def read_secrets(stream=None) -> dict[str, str]:
    """The one JSON line of secrets the job manager writes to our stdin (then closes it)."""
    line = (stream or sys.stdin).readline()
    try:
        data = json.loads(line) if line.strip() else {}
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError('--secrets-stdin expects one JSON object line such as {"mdc_api_key": "..."}.')
    return data


def still_running(run_dir: Path) -> int | None:
    """The pid of a live earlier attempt of this run, else None: process.job_alive's pid + exact start time
    check (the one jobs.py uses), which never counts this process or its launcher."""
    if not process.job_alive(run_dir):
        return None
    job = runfolder.read_job(run_dir)
    status = runfolder.read_status(run_dir)
    return (job.pid if job else None) or (status.pid if status else None) or -1


def _cli_train(args: argparse.Namespace) -> int:
    from whisper_studio.train import dist_env, run_training

    _quiet_library_warnings()
    check_run_limits(max_steps=args.max_steps, save_steps=args.save_steps, time_limit_s=args.time_limit)
    secrets = read_secrets() if args.secrets_stdin else {}
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / runfolder.CONFIG).is_file():
            raise JobError(f"{run_dir} is not a run folder (no {runfolder.CONFIG}).")
        pid = still_running(run_dir)
        if pid is not None:
            raise JobError(f"{run_dir} is still running (pid {pid}); stop it before resuming.")
        cfg = TrainConfig.load(run_dir / runfolder.CONFIG)
        resume = True
    else:
        sm_env = sagemaker.environment()
        if sm_env is not None:  # inside a SageMaker training job: its channels and output folders by default
            sagemaker.apply_defaults(args, sm_env)
        cfg, run_dir = config_from_args(args)
        resume = False
    try:
        status = run_training(cfg, run_dir, resume=resume, evaluate=not args.no_eval, save_steps=args.save_steps,
                              max_steps=args.max_steps, time_limit_s=args.time_limit,
                              api_key=secrets.get("mdc_api_key") or None)
    except StudioError:
        raise  # cli.main prints the message and exits 2
    except Exception:
        return 1  # traceback already on stderr; status.json says failed
    if dist_env()[0] == 0:
        sm_env = sagemaker.environment()
        if sm_env is not None:
            sagemaker.publish(run_dir, sm_env)  # SageMaker uploads SM_MODEL_DIR and the output dir to S3
        print(json.dumps({"run_dir": str(run_dir), "state": status.state, "step": status.step}), flush=True)
    return 0 if status.state in ("finished", "stopped") else 1
