"""Your own recordings as a dataset: the engine of the Record panel (issue 12.1 a).

A `RecordingSet` is a folder in the Common Voice release layout (`train.tsv`, `test.tsv`, `clips/`), so the
cv-folder source reads it like any release (`source_config()`). It proposes the next sentence to read (from
text the user pasted, or the demo sentences of the language), never one already recorded; each recording is
written as a 16 kHz clip and one TSV row. Train and test are kept disjoint by sentence: a sentence recorded
again goes to the split it is in already, a new one goes to test about 1 time in 5.

Writes are safe against a crash and against two tabs recording at once: TSVs are rewritten atomically
(`util.write_atomic`) under a file lock, a clip is written before the row that names it.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from whisper_studio import audio, languages, util
from whisper_studio.errors import AudioError, DataSourceError

COLUMNS = ("client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accents", "locale",
           "segment")
SPLITS = ("train", "test")
TEST_EVERY = 5  # the 2nd, 7th, 12th, ... new sentence goes to test: both splits exist after two sentences
MIN_SECONDS = 0.3
MAX_SECONDS = 30.0  # Whisper's window; longer clips are dropped from training anyway
CLIENT_ID = "recorded-in-whisper-studio"
_SENTENCE_END = re.compile(r"(?<=[.!?।॥。！？])\s+")


@dataclass(frozen=True)
class Counts:
    train_clips: int
    test_clips: int
    train_sentences: int
    test_sentences: int
    seconds: float

    @property
    def clips(self) -> int:
        return self.train_clips + self.test_clips


def split_text(text: str) -> list[str]:
    """Pasted text -> sentences: one per line, long lines cut after sentence-ending punctuation."""
    out = []
    for line in (text or "").splitlines():
        for part in _SENTENCE_END.split(line.strip()):
            part = " ".join(part.split())
            if part:
                out.append(part)
    return out


class RecordingSet:
    """A Common Voice-layout folder that grows one recording at a time."""

    def __init__(self, root: str | os.PathLike, language: str | languages.Language, *, text: str | None = None,
                 clip_format: str = "wav"):
        self.root = Path(root).expanduser()
        self.language = languages.resolve(language)
        if clip_format not in ("wav", "mp3"):
            raise DataSourceError(f"Recordings are saved as wav or mp3, not {clip_format!r}.")
        self.clip_format = clip_format
        self._prompts: list[str] | None = split_text(text) if text else None
        (self.root / "clips").mkdir(parents=True, exist_ok=True)
        with self._lock():
            for split in SPLITS:
                if not self._tsv(split).is_file():
                    util.write_atomic(self._tsv(split), "\t".join(COLUMNS) + "\n")

    # --- Reading ----------------------------------------------------------------------------------------------
    def _tsv(self, split: str) -> Path:
        return self.root / f"{split}.tsv"

    def _lock(self):
        return util.file_lock(self.root / ".recordings.lock")

    def _rows(self, split: str) -> list[dict]:
        from whisper_studio.sources import tables

        header, rows = tables.read_delimited(self._tsv(split), "\t", quoting=csv.QUOTE_NONE)
        return [dict(zip(header, fields)) for _, fields in rows]

    def _sentence_splits(self) -> dict[str, str]:
        from whisper_studio.sentences import sentence_key

        return {sentence_key(row.get("sentence", "")): split for split in SPLITS for row in self._rows(split)}

    def counts(self) -> Counts:
        from whisper_studio.sentences import sentence_key

        rows = {split: self._rows(split) for split in SPLITS}
        seconds = 0.0
        for split in SPLITS:
            for row in rows[split]:
                try:
                    seconds += audio.duration(str(self.root / "clips" / row["path"]))
                except (AudioError, KeyError):
                    pass
        distinct = {split: len({sentence_key(r.get("sentence", "")) for r in rows[split]}) for split in SPLITS}
        return Counts(len(rows["train"]), len(rows["test"]), distinct["train"], distinct["test"], round(seconds, 2))

    # --- Prompts ----------------------------------------------------------------------------------------------
    def use_text(self, text: str) -> int:
        """Read sentences from the user's text from now on; returns how many it holds."""
        self._prompts = split_text(text)
        if not self._prompts:
            raise DataSourceError("The pasted text holds no sentence to read.")
        return len(self._prompts)

    def _pool(self) -> list[str]:
        if self._prompts is not None:
            return self._prompts
        from whisper_studio import demo, sentences

        if self.language.locale not in demo.DEMO_LANGUAGES:
            raise DataSourceError(
                f"There are no built-in sentences for {self.language.english}; paste the text you want to read."
            )
        self._prompts = sentences.generate(self.language.locale, 500, seed=12)
        return self._prompts

    def next_sentence(self) -> str:
        """The first sentence of the pool not recorded yet; DataSourceError when all are."""
        from whisper_studio.sentences import sentence_key

        done = self._sentence_splits()
        for sentence in self._pool():
            if sentence_key(sentence) not in done:
                return sentence
        raise DataSourceError("Every sentence of the text is recorded; paste more text to record more.")

    # --- Writing ----------------------------------------------------------------------------------------------
    def add(self, recording: Any, sentence: str) -> Path:
        """Save one recording of `sentence` (a path, bytes, gradio's (sr, array), or a 16 kHz array) as a
        16 kHz clip in clips/ plus a row in train.tsv or test.tsv; returns the clip's path."""
        from whisper_studio.sentences import sentence_key

        # 1. Check the input before anything is written.
        sentence = " ".join(str(sentence or "").split())
        if not sentence:
            raise DataSourceError("The sentence is empty: there is nothing to pair the recording with.")
        samples = audio.load_audio(recording)
        seconds = len(samples) / audio.SAMPLE_RATE
        if seconds < MIN_SECONDS:
            raise AudioError(f"The recording is {seconds:.2f} s long; record the whole sentence.")
        if seconds > MAX_SECONDS:
            raise AudioError(f"The recording is {seconds:.0f} s long; Whisper learns from clips up to 30 s.")
        if float(np.max(np.abs(samples))) < 1e-4:
            raise AudioError("The recording is silent: check the microphone.")
        with self._lock():
            # 2. Its split: where this sentence is already, else every TEST_EVERY-th new sentence to test.
            known = self._sentence_splits()
            split = known.get(sentence_key(sentence))
            if split is None:
                split = "test" if len(known) % TEST_EVERY == 1 else "train"
            # 3. The clip first, then the row (a crash in between leaves an unlisted clip, never a bad row).
            name = f"rec_{self.language.locale}_{time.strftime('%Y%m%d')}_{uuid.uuid4().hex[:10]}.{self.clip_format}"
            clip = self.root / "clips" / name
            buffer = io.BytesIO()
            import soundfile as sf

            sf.write(buffer, samples, audio.SAMPLE_RATE, format=self.clip_format.upper(),
                     **({"subtype": "PCM_16"} if self.clip_format == "wav" else {}))
            util.write_atomic(clip, buffer.getvalue())
            row = {"client_id": CLIENT_ID, "path": name, "sentence": sentence, "up_votes": "0", "down_votes": "0",
                   "age": "", "gender": "", "accents": "", "locale": self.language.locale, "segment": ""}
            rows = self._rows(split) + [row]
            lines = ["\t".join(COLUMNS)] + ["\t".join(str(r.get(c, "")) for c in COLUMNS) for r in rows]
            util.write_atomic(self._tsv(split), "\n".join(lines) + "\n")
        return clip

    def source_config(self):
        from whisper_studio.config import SourceConfig

        return SourceConfig(kind="cv-folder", language=self.language.locale, path=str(self.root))
