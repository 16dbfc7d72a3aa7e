"""Share a run's result on the Hugging Face hub: the LoRA adapter, or the adapter merged into a full model.

`python -m whisper_studio push RUN_DIR --repo-id OWNER/NAME [--merged] [--public]`; the token comes from
`--token-env` (default HF_TOKEN) or, in the UI, a password field — it is never printed or logged. Only the
command line may fall back to the environment's token (`allow_env_token=True`): on a Space HF_TOKEN is the
owner's secret, so a UI request must bring its own.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from whisper_studio import runfolder, util
from whisper_studio.errors import ConfigError, JobError, OfflineError, StudioError

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def push_run(
    run_dir: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    merged: bool = False,
    private: bool = True,
    allow_env_token: bool = False,
) -> str:
    """Upload RUN_DIR/adapter (or a merged model built from it) to `repo_id`; returns the repo URL.
    `allow_env_token`: with no `token`, use HF_TOKEN / HUGGING_FACE_HUB_TOKEN (the command line only)."""
    run_dir = Path(run_dir)
    adapter = run_dir / runfolder.ADAPTER
    if not (adapter / "adapter_config.json").is_file():
        raise JobError(f"{run_dir} has no adapter to share yet (no {adapter}/adapter_config.json); train it first.")
    token = _token(token, allow_env_token)
    if not merged:
        return push_folder(adapter, repo_id, token=token, private=private, message=f"Whisper Studio adapter from {run_dir.name}")
    from whisper_studio.export import export_merged  # heavy: loads the base model

    with tempfile.TemporaryDirectory(prefix="whisper-studio-merged-") as tmp:
        export_merged(run_dir, Path(tmp) / "model")
        return push_folder(Path(tmp) / "model", repo_id, token=token, private=private, message=f"Whisper Studio merged model from {run_dir.name}")


def _token(token: str | None, allow_env_token: bool) -> str:
    token = (token or "").strip()
    if not token and allow_env_token:
        token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or ""
    if not token:
        where = "set HF_TOKEN or pass --token-env" if allow_env_token else "paste one in the token field"
        raise ConfigError(f"Pushing to the hub needs a write token: {where}.")
    return token


def push_folder(folder: str | os.PathLike, repo_id: str, *, token: str | None = None, private: bool = True, message: str = "",
                allow_env_token: bool = False) -> str:
    """Create (or reuse) a model repo and upload a folder to it, with errors a user can act on."""
    # 1. Check what we can before touching the network.
    if not REPO_ID.match(repo_id or ""):
        raise ConfigError(f"{repo_id!r} is not a hub repository id; use OWNER/NAME, e.g. your-name/whisper-base-mr-lora.")
    token = _token(token, allow_env_token)
    endpoint = util.hub_endpoint()
    # Only the hub's own flag: TRANSFORMERS_OFFLINE / HF_DATASETS_OFFLINE say nothing about uploading.
    if util.env_true("HF_HUB_OFFLINE"):
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


def _check_reachable(endpoint: str) -> None:
    """Fail in seconds, not after the client's retries, when the hub cannot be reached at all."""
    if not util.reachable(endpoint):
        raise OfflineError(
            f"Could not reach the hub at {endpoint} (no connection within {util.PROBE_TIMEOUT_S:g} s). Pushing needs "
            "the network; the adapter stays in the run folder, where you can copy it from."
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__
