"""Share a run's result on the Hugging Face hub: the LoRA adapter, or the adapter merged into a full model.

`python -m whisper_studio push RUN_DIR --repo-id OWNER/NAME [--merged] [--public]`; the token comes from
`--token-env` (default HF_TOKEN) or, in the UI, a password field — it is never printed or logged.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from whisper_studio import runfolder
from whisper_studio.errors import ConfigError, JobError, OfflineError, StudioError

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
DEFAULT_ENDPOINT = "https://huggingface.co"


def push_run(
    run_dir: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    merged: bool = False,
    private: bool = True,
) -> str:
    """Upload RUN_DIR/adapter (or a merged model built from it) to `repo_id`; returns the repo URL."""
    run_dir = Path(run_dir)
    adapter = run_dir / runfolder.ADAPTER
    if not (adapter / "adapter_config.json").is_file():
        raise JobError(f"{run_dir} has no adapter to share yet (no {adapter}/adapter_config.json); train it first.")
    if not merged:
        return push_folder(adapter, repo_id, token=token, private=private, message=f"Whisper Studio adapter from {run_dir.name}")
    from whisper_studio.export import export_merged  # heavy: loads the base model

    with tempfile.TemporaryDirectory(prefix="whisper-studio-merged-") as tmp:
        export_merged(run_dir, Path(tmp) / "model")
        return push_folder(Path(tmp) / "model", repo_id, token=token, private=private, message=f"Whisper Studio merged model from {run_dir.name}")


def push_folder(folder: str | os.PathLike, repo_id: str, *, token: str | None = None, private: bool = True, message: str = "") -> str:
    """Create (or reuse) a model repo and upload a folder to it, with errors a user can act on."""
    # 1. Check what we can before touching the network.
    if not REPO_ID.match(repo_id or ""):
        raise ConfigError(f"{repo_id!r} is not a hub repository id; use OWNER/NAME, e.g. your-name/whisper-base-mr-lora.")
    token = token or os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if not token:
        raise ConfigError("Pushing to the hub needs a write token: set HF_TOKEN or paste one in the token field.")
    endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise OfflineError("Pushing to the hub needs the network, and HF_HUB_OFFLINE is set. The files stay in the run folder.")
    _check_reachable(endpoint)

    # 2. Create the repo and upload.
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=endpoint, token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=message or "Upload from Whisper Studio")
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        if status in (401, 403):
            raise StudioError(f"The hub rejected the token for {repo_id} (HTTP {status}): it needs write access to that namespace.") from None
        raise StudioError(f"The hub refused the upload to {repo_id}: {_first_line(exc)}") from None
    except (OSError, ConnectionError) as exc:
        raise OfflineError(f"Could not reach the hub at {endpoint}: {_first_line(exc)}. The files stay in the run folder.") from None
    return str(url)


def _check_reachable(endpoint: str, timeout: float = 3.0) -> None:
    """Fail in seconds, not after the client's retries, when the hub cannot be reached at all."""
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        raise OfflineError(
            f"Could not reach the hub at {endpoint} ({exc.__class__.__name__}). Pushing needs the network; "
            "the adapter stays in the run folder, where you can copy it from."
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


# --- CLI --------------------------------------------------------------------------------------------------
def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("push", help="upload a run's adapter (or merged model) to the Hugging Face hub")
    p.add_argument("run_dir", help="the run folder")
    p.add_argument("--repo-id", required=True, help="OWNER/NAME of the model repo to create or update")
    p.add_argument("--merged", action="store_true", help="upload the adapter merged into a full model instead")
    p.add_argument("--public", action="store_true", help="make a new repo public (default private)")
    p.add_argument("--token-env", default="HF_TOKEN", help="environment variable holding a write token (default HF_TOKEN)")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    url = push_run(args.run_dir, args.repo_id, token=os.environ.get(args.token_env), merged=args.merged, private=not args.public)
    print(url)
    return 0
