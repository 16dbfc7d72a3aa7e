"""Hub ids (``openai/whisper-small``) -> a folder in the Hugging Face cache, downloading only when it can work.

Offline (by flag, or because the hub does not answer) a hub id fails at once with an :class:`OfflineError` that
points at the bundled models, instead of the hub client retrying for minutes.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from whisper_studio import util
from whisper_studio.errors import ModelError, OfflineError
from whisper_studio.models.ids import bundled_ids, check_whisper_folder, suggestions

log = logging.getLogger(__name__)

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]  # weights, configs, tokenizer; no .bin/.msgpack/.h5
OFFLINE_FLAG = "offline mode is on (HF_HUB_OFFLINE)"


def is_hub_id(text: str) -> bool:
    return bool(HUB_ID.match(text))


def offline_message(model_id: str, why: str) -> str:
    return (
        f"{model_id} is not in the local Hugging Face cache and {why}. "
        f"Use a bundled model instead ({', '.join(bundled_ids())}), which works offline, "
        "or download the model once while online."
    )


def resolve_hub(repo_id: str) -> Path:
    """The cached snapshot of `repo_id`, else a fresh download; OfflineError when the hub cannot be used."""
    from huggingface_hub import snapshot_download

    # 1. The local cache: no network at all.
    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True, allow_patterns=HUB_PATTERNS))
        if (folder / "config.json").is_file():
            return folder
    except Exception as exc:  # not cached (LocalEntryNotFoundError and friends): try the network below
        log.debug("%s not in the HF cache: %s", repo_id, exc)

    # 2. Fail fast when a download cannot work.
    if util.hub_offline():
        raise OfflineError(offline_message(repo_id, OFFLINE_FLAG))
    if not util.hub_reachable():
        raise OfflineError(offline_message(repo_id, "the Hugging Face hub cannot be reached"))

    # 3. Download, turning the hub client's errors into ones a user can act on.
    from huggingface_hub import errors as hub_errors

    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS))
    except (hub_errors.RepositoryNotFoundError, hub_errors.GatedRepoError, hub_errors.RevisionNotFoundError, hub_errors.HFValidationError) as exc:
        raise ModelError(f"{repo_id} cannot be downloaded from the Hugging Face hub ({type(exc).__name__})." + suggestions(repo_id)) from None
    except hub_errors.OfflineModeIsEnabled:  # the hub library was imported with HF_HUB_OFFLINE set
        raise OfflineError(offline_message(repo_id, OFFLINE_FLAG)) from None
    except Exception as exc:  # network failures of any flavour (httpx / requests / OSError)
        name = type(exc).__name__.lower()
        if isinstance(exc, (OSError, ConnectionError)) or any(k in name for k in ("connect", "timeout", "network", "http")):
            raise OfflineError(offline_message(repo_id, f"the download failed ({type(exc).__name__}: {exc})")) from None
        raise
    check_whisper_folder(folder)
    return folder
