"""`python -m whisper_studio push RUN_DIR --repo-id OWNER/NAME [--merged] [--public]`: share a run on the hub."""

from __future__ import annotations

import argparse
import os

from whisper_studio.sharing import push_run


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("push", help="upload a run's adapter (or merged model) to the Hugging Face hub")
    p.add_argument("run_dir", help="the run folder")
    p.add_argument("--repo-id", required=True, help="OWNER/NAME of the model repo to create or update")
    p.add_argument("--merged", action="store_true", help="upload the adapter merged into a full model instead")
    p.add_argument("--public", action="store_true", help="make a new repo public (default private)")
    p.add_argument("--token-env", default="HF_TOKEN", help="environment variable holding a write token (default HF_TOKEN)")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    url = push_run(args.run_dir, args.repo_id, token=os.environ.get(args.token_env), merged=args.merged, private=not args.public,
                   allow_env_token=True)
    print(url)
    return 0
