"""LoRA adapters loaded by folder onto one base model, least recently used ones dropped, and the lock that
serialises every use of that model.

Base outputs are taken with every adapter disabled (`mode(adapted=False)`), so comparing base and adapted never
needs two copies of the model. `session(adapter_dir)` holds the lock across set-adapter and any number of passes,
so another caller of the same (process-wide) model cannot switch the adapter between a base and an adapted pass.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

from whisper_studio import models
from whisper_studio.errors import ModelError

log = logging.getLogger(__name__)

MAX_ADAPTERS = 4  # adapters kept loaded at once (each is a few MB); least recently used ones are dropped


def adapter_stamp(path: Path) -> int:
    """Changes when the adapter is retrained into the same folder, so a stale copy in memory is reloaded."""
    for name in ("adapter_model.safetensors", "adapter_model.bin"):
        f = path / name
        if f.is_file():
            st = f.stat()
            return st.st_mtime_ns ^ st.st_size
    raise ModelError(f"{path} has an adapter_config.json but no adapter weights (adapter_model.safetensors).")


class AdapterCache:
    """The adapters loaded over `base`. `model` is the base itself until the first adapter loads, then the
    PeftModel wrapping it; `active` is the folder of the adapter `mode(adapted=True)` runs."""

    def __init__(self, base, model_id: str):
        self.base = base
        self.model_id = model_id
        self.model = base
        self.active: str | None = None
        self.lock = threading.RLock()  # re-entrant: a session's passes take it again
        self._loaded: OrderedDict[str, tuple[str, int]] = OrderedDict()  # folder -> (peft name, stamp)

    @property
    def folders(self) -> list[str]:
        return list(self._loaded)

    def set(self, adapter_dir: str | os.PathLike | None) -> str | None:
        """Make `adapter_dir` the active adapter (None or "": none), loading it if it is new or was retrained
        since it was loaded. Returns its folder."""
        from peft import PeftModel

        with self.lock:
            if adapter_dir is None or str(adapter_dir).strip() == "":
                self.active = None
                return None
            path = models.check_adapter_dir(adapter_dir)
            key, stamp = str(path), adapter_stamp(path)
            known = self._loaded.get(key)
            if known and known[1] != stamp:  # retrained since it was loaded
                self.drop(key)
                known = None
            if known is None:
                self._warn_base_mismatch(path)
                name = "a" + hashlib.sha1(key.encode()).hexdigest()[:12]
                self.model = models.load_adapter(self.model, path, adapter_name=name)
                self._loaded[key] = (name, stamp)
                while len(self._loaded) > MAX_ADAPTERS:
                    self.drop(next(iter(self._loaded)))
            self._loaded.move_to_end(key)
            assert isinstance(self.model, PeftModel)
            self.model.set_adapter(self._loaded[key][0])
            self.model.eval()
            self.active = key
            return key

    def drop(self, key: str) -> None:
        """Unload one adapter; with none left, `model` is the bare base again."""
        with self.lock:
            name, _ = self._loaded.pop(key)
            if self.active == key:
                self.active = None
            if self._loaded:
                # peft refuses to delete the active adapter; activate another first.
                self.model.set_adapter(next(reversed(self._loaded.values()))[0])
            self.model.delete_adapter(name)
            if not self._loaded:
                self.model = self.model.unload()
            gc.collect()

    def _warn_base_mismatch(self, path: Path) -> None:
        recorded = models.adapter_base_model(path)
        if not recorded:
            return
        ours = {self.model_id, str(models.resolve(self.model_id))}
        if recorded not in ours and Path(recorded).name != Path(self.model_id).name:
            log.warning("adapter %s was trained on %s; loading it on %s", path, recorded, self.model_id)

    @contextlib.contextmanager
    def mode(self, adapted: bool):
        """The model to run: the active adapter, or the base with every adapter disabled. Call with `lock` held."""
        if adapted:
            if self.active is None:
                raise ModelError("No adapter is loaded; choose a trained run (an adapter folder) first.")
            yield self.model
        elif self.model is self.base:
            yield self.base
        else:
            with self.model.disable_adapter():
                yield self.model

    @contextlib.contextmanager
    def session(self, adapter_dir: str | os.PathLike | None) -> Iterator[str | None]:
        """Hold the lock, make `adapter_dir` active, and keep it so until the block ends; yields its folder."""
        with self.lock:
            yield self.set(adapter_dir)
