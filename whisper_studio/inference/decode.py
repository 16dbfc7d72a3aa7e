"""What to decode (`DecodeOptions`) and how: a greedy loop for clips of up to 30 s, generate() kwargs for longer.

Clips of up to 30 s (the common case, and evaluation's) skip `generate()`: a plain greedy loop (encoder once,
decoder steps with a KV cache, the suppress-token masks precomputed) gives the same tokens without generate's
per-step logits processors, and language detection reuses the encoder output instead of running the encoder
twice. Longer audio goes through longform.py (the same loop, timestamps on, window by window);
`Decoder.generate_kwargs` serves the generate() reference path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from whisper_studio import languages
from whisper_studio.errors import ConfigError, LanguageError, ModelError
from whisper_studio.languages import Language

TASKS = ("transcribe", "translate")


@dataclass(frozen=True)
class DecodeOptions:
    language: Language | None = None  # None: detect it (per clip on the greedy path)
    task: str = "transcribe"  # one of TASKS
    max_new_tokens: int | None = None  # cap on generated tokens per 30 s window; None: the model's 448 positions

    def __post_init__(self) -> None:
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1 (got {self.max_new_tokens}).")
        if self.task not in TASKS:
            raise ConfigError(f"Task must be one of {', '.join(TASKS)} (got {self.task!r}).")

    @property
    def code(self) -> str | None:
        """The Whisper language code, None to detect."""
        return self.language.whisper if self.language is not None else None


def resolve_language(language: str | Language | None) -> Language | None:
    """A language request -> Language, None for "detect" (None, "" or "auto").

    Transcription also takes a Whisper language that Common Voice lacks (e.g. 'la', 'latin'): it cannot be
    trained on, but the model has its token."""
    if isinstance(language, Language):
        return language
    if language is None or str(language).strip() in ("", "auto"):
        return None
    try:
        return languages.resolve(language)
    except LanguageError:
        from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

        key = str(language).strip().lower()
        code = key if key in LANGUAGES else TO_LANGUAGE_CODE.get(key)
        if code is None:
            raise
        name = LANGUAGES[code].title()
        return Language(locale=code, whisper=code, english=name, native=name)


class Decoder:
    """A Whisper model's special tokens and masks, precomputed once: the greedy loop, the language detection and
    the generate() arguments for one DecodeOptions."""

    def __init__(self, base, tokenizer, device: str, name: str):
        import torch

        gen, config = base.generation_config, base.config
        self.base, self.tokenizer, self.device, self.name = base, tokenizer, device, name
        self.lang_to_id: dict[str, int] = dict(getattr(gen, "lang_to_id", None) or {})
        self.id_to_lang = {v: k.strip("<|>") for k, v in self.lang_to_id.items()}
        self.multilingual = bool(getattr(gen, "is_multilingual", True)) and bool(self.lang_to_id)
        self.sot = int(gen.decoder_start_token_id)
        eos = gen.eos_token_id
        self.eot = int(eos[0] if isinstance(eos, (list, tuple)) else eos)
        self.no_timestamps = getattr(gen, "no_timestamps_token_id", None)
        self.task_to_id = dict(getattr(gen, "task_to_id", None) or {})
        self.max_positions = int(config.max_target_positions)
        vocab = int(config.vocab_size)
        suppress = torch.zeros(vocab, dtype=torch.float32)
        suppress[[t for t in (getattr(gen, "suppress_tokens", None) or []) if 0 <= t < vocab]] = float("-inf")
        begin = suppress.clone()
        begin[[t for t in (getattr(gen, "begin_suppress_tokens", None) or []) if 0 <= t < vocab]] = float("-inf")
        self.suppress = suppress.to(device)
        self.suppress_begin = begin.to(device)
        lang_mask = torch.full((vocab,), float("-inf"))
        lang_mask[[i for i in self.lang_to_id.values() if 0 <= i < vocab]] = 0.0
        self.lang_mask = lang_mask.to(device)

    # --- options against this model ----------------------------------------------------------------------------
    def check(self, options: DecodeOptions) -> DecodeOptions:
        """`options` as this model runs them: English-only models take English (no language or task tokens)
        and refuse anything else; a multilingual model must have the language's token."""
        lang = options.language
        if not self.multilingual:
            if options.task == "translate":
                raise ModelError(f"{self.name} is an English-only model; it cannot translate. Choose a multilingual model.")
            if lang is not None and lang.whisper != "en":
                raise LanguageError(f"{self.name} is an English-only model; it cannot transcribe {lang.locale!r}. "
                                    "Choose a multilingual model.")
            return dataclasses.replace(options, language=languages.resolve("en"))
        if lang is not None and lang.token not in self.lang_to_id:
            raise LanguageError(f"{self.name} has no {lang.token} language token.")
        return options

    def generate_kwargs(self, options: DecodeOptions) -> dict[str, Any]:
        """generate() arguments for checked options (long-form, and the reference path)."""
        kwargs: dict[str, Any] = {}
        if options.max_new_tokens is not None:
            kwargs["max_new_tokens"] = int(options.max_new_tokens)
        if self.multilingual:
            kwargs["task"] = options.task
            if options.code:
                kwargs["language"] = options.code
        return kwargs

    def detect(self, model, features) -> str:
        """The language code `model` (adapter state as the caller set it) hears in the first 30 s."""
        lang_ids = model.detect_language(input_features=features[:, :, :3000])
        return self.id_to_lang.get(int(lang_ids[0]), "en")

    # --- the greedy loop (clips of up to 30 s) -----------------------------------------------------------------
    def prompt(self, code: str | None, task: str) -> list[int]:
        """The decoder prompt generate() builds: <|sot|> [<|lang|> <|task|>] <|notimestamps|>."""
        ids = [self.sot]
        if self.multilingual:
            ids.append(self.lang_to_id[f"<|{code}|>"])
            task_id = self.task_to_id.get(task)
            if task_id is None:
                task_id = self.tokenizer.convert_tokens_to_ids(f"<|{task}|>")
            ids.append(int(task_id))
        if self.no_timestamps is not None:
            ids.append(int(self.no_timestamps))
        return ids

    def logits(self, hidden):
        """Float32 logits (batch, vocab) of the last position of `hidden` (batch, positions, d_model)."""
        return self.base.proj_out(hidden[:, -1:]).float()[:, 0]

    def greedy(self, features, options: DecodeOptions) -> tuple[list[str], list[str | None]]:
        """Greedy transcripts of a batch of (at most 30 s) features, and the language of each (detected when
        `options.language` is None on a multilingual model). Runs the base, with whatever adapter state the caller
        set up, module by module:
        1. the encoder, once;
        2. the language, from the first decoder step's logits over the language tokens (if not given);
        3. decoder steps with a KV cache until every item has emitted end-of-text or the token limit."""
        import torch

        batch = features.shape[0]
        with torch.inference_mode():
            enc = self.base.model.encoder(features).last_hidden_state
            decoder = self.base.model.decoder
            codes: list[str | None]
            if self.multilingual and options.code is None:
                sot = torch.full((batch, 1), self.sot, dtype=torch.long, device=self.device)
                hidden = decoder(input_ids=sot, encoder_hidden_states=enc, use_cache=False).last_hidden_state
                lang_ids = (self.logits(hidden) + self.lang_mask).argmax(-1).tolist()
                codes = [self.id_to_lang.get(int(i), "en") for i in lang_ids]
            else:
                codes = [options.code if self.multilingual else "en"] * batch
            prompt = torch.tensor([self.prompt(c, options.task) for c in codes], dtype=torch.long, device=self.device)
            limit = self.max_positions - prompt.shape[1]
            if options.max_new_tokens is not None:
                limit = min(limit, int(options.max_new_tokens))
            tokens = torch.full((batch, max(limit, 0)), self.eot, dtype=torch.long, device=self.device)
            done = torch.zeros(batch, dtype=torch.bool, device=self.device)
            cache, ids, mask = None, prompt, self.suppress_begin
            for step in range(limit):
                out = decoder(input_ids=ids, encoder_hidden_states=enc, cache=cache, use_cache=True)
                cache = out.cache
                nxt = (self.logits(out.last_hidden_state) + mask).argmax(-1)
                nxt = torch.where(done, self.eot, nxt)
                tokens[:, step] = nxt
                done |= nxt == self.eot
                if bool(done.all()):
                    break
                ids, mask = nxt[:, None], self.suppress
        texts = self.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        return [t.strip() for t in texts], codes
