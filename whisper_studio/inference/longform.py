"""Audio over 30 s: sequential 30 s windows with timestamp-based seeking, through our own greedy loop.

The algorithm is OpenAI's transcribe() (and faster-whisper's, and transformers' sequential long-form generate()),
greedy and without temperature fallback:

1. log-mel features of the whole recording, computed once (the caller's feature extractor);
2. a window = the 30 s (3000 frames) from `seek`, zero-padded at the end of the audio; the encoder runs once on it;
3. the decoder runs greedily with timestamp tokens on, under Whisper's timestamp rules (pairs, never decreasing,
   the first one at most 1 s in, a timestamp forced when all timestamps together outweigh the best text token);
4. the window's last complete timestamp pair decides the seek: the text after it (cut mid-word by the window's
   end) is dropped and decoded again from the next window, which starts at that timestamp; a window ending on a
   single timestamp, or with no pair at all, moves the seek by the whole window.

Several recordings decode side by side (one batch of windows, each item with its own seek; finished items drop
out), which is the optional batching. The previous window's tokens can be given as a prompt
(`condition_on_previous=True`, off by default, like the app's generate() call); such items decode one at a time.
Tokens match transformers' generate(return_timestamps=True, condition_on_prev_tokens=False) on float32 weights
(tests/test_longform.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from whisper_studio.inference.decode import Decoder, DecodeOptions

if TYPE_CHECKING:
    import torch

WINDOW_FRAMES = 3000  # 30 s of 10 ms mel frames
INPUT_STRIDE = 2  # mel frames per encoder position (and per 0.02 s timestamp step)
FRAMES_PER_SECOND = 100
Progress = Callable[[float, float], None]  # (seconds done, seconds in all)


@dataclass
class WindowResult:
    tokens: list[int]  # the window's tokens that are kept (text and timestamps, up to the last complete pair)
    advance: int  # mel frames the seek moves on


def seek_step(seq: list[int], timestamp_begin: int, window_frames: int) -> WindowResult:
    """Where the next window starts, from one window's generated tokens (end-of-text removed)."""
    is_ts = [t >= timestamp_begin for t in seq]
    single_ending = is_ts[-2:] == [False, True]
    pairs = [i + 1 for i in range(len(seq) - 1) if is_ts[i] and is_ts[i + 1]]
    if not pairs or single_ending:
        # No segment boundary inside the window, or speech ended before it did: the whole window is done.
        return WindowResult(seq, window_frames)
    # Cut after the last pair; the next window starts at the timestamp that closed the last full segment.
    last = pairs[-1]
    advance = (seq[last - 1] - timestamp_begin) * INPUT_STRIDE
    return WindowResult(seq[: last + 1], max(int(advance), 1))


class LongForm:
    """The long-form loop over one `Decoder` (the base model with whatever adapter state the caller set up)."""

    def __init__(self, decoder: Decoder):
        self.d = decoder
        gen = decoder.base.generation_config
        no_ts = getattr(gen, "no_timestamps_token_id", None)
        if no_ts is None:
            from whisper_studio.errors import ModelError

            raise ModelError(f"{decoder.name} has no timestamp tokens; it cannot transcribe audio over 30 s.")
        self.no_timestamps = int(no_ts)
        self.timestamp_begin = self.no_timestamps + 1
        self.max_initial = getattr(gen, "max_initial_timestamp_index", None)
        self.prev_sot = getattr(gen, "prev_sot_token_id", None)

    # --- one batch of windows ------------------------------------------------------------------------------------
    def prompt(self, code: str | None, task: str) -> list[int]:
        """<|sot|> [<|lang|> <|task|>]: the greedy loop's prompt without <|notimestamps|>."""
        ids = self.d.prompt(code, task)
        return ids[:-1] if self.d.no_timestamps is not None and ids[-1] == int(self.d.no_timestamps) else ids

    def rules(self, scores, step: int, state: list[tuple[bool, bool, int]]):
        """Whisper's timestamp rules on (batch, vocab) scores, in place (transformers' WhisperTimeStampLogitsProcessor).

        `state` holds each row's (last token was a timestamp, the one before it was too (or there is none), value of
        the last timestamp token, -1 if none yet) as Python values: the rules then touch slices only (the 1501
        timestamp columns, or the text columns of a row that must close its pair), never build a vocabulary-wide
        mask per step. The only full-vocabulary pass is the log-softmax of the "timestamps outweigh text" rule."""
        import torch

        inf = float("-inf")
        tb = self.timestamp_begin
        scores[:, self.no_timestamps] = inf
        if step == 0:  # the window opens with a timestamp, at most max_initial steps in
            scores[:, :tb] = inf
            if self.max_initial is not None:
                scores[:, tb + int(self.max_initial) + 1:] = inf
        for row, (last_ts, pen_ts, last_value) in enumerate(state):
            if last_ts and pen_ts:  # a pair just closed: text (or end) comes next
                scores[row, tb:] = inf
            elif last_ts:  # a segment just ended: its pair's second timestamp or the end
                scores[row, : self.d.eot] = inf
            if last_value >= 0:  # timestamps never decrease (and <|0.00|> is not emitted twice)
                scores[row, tb: last_value if (last_ts and not pen_ts) else last_value + 1] = inf
        logprobs = torch.log_softmax(scores, dim=-1)
        timestamp_wins = logprobs[:, tb:].logsumexp(dim=-1) > logprobs[:, :tb].amax(dim=-1)
        scores[:, :tb].masked_fill_(timestamp_wins[:, None], inf)
        return scores

    def decode_windows(self, enc, prompts: list[list[int]], max_new_tokens: int | None) -> list[list[int]]:
        """Greedy tokens (end-of-text removed) of a batch of encoded 30 s windows, each with its prompt (all the
        same length): decoder steps with a KV cache (self-attention grows, cross-attention keys and values are
        computed on the first step and reused) under the timestamp rules."""
        import torch

        d = self.d
        batch = enc.shape[0]
        limit = d.max_positions - len(prompts[0])
        if max_new_tokens is not None:
            limit = min(limit, int(max_new_tokens))
        rows: list[list[int]] = [[] for _ in range(batch)]
        done = [False] * batch
        state = [(False, True, -1)] * batch  # "no token yet" counts as a timestamp
        with torch.inference_mode():
            ids = torch.tensor(prompts, dtype=torch.long, device=d.device)
            cache, mask = None, d.suppress_begin
            for step in range(limit):
                out = d.base.model.decoder(input_ids=ids, encoder_hidden_states=enc, cache=cache, use_cache=True)
                cache = out.cache
                scores = self.rules(d.logits(out.last_hidden_state) + mask, step, state)
                nxt = scores.argmax(-1).tolist()
                for row in range(batch):
                    if done[row] or nxt[row] == d.eot:
                        done[row], nxt[row] = True, d.eot
                    else:
                        rows[row].append(nxt[row])
                if all(done):
                    break
                tb = self.timestamp_begin
                state = [(t >= tb, last_ts or step == 0, t if t >= tb else value)
                         for t, (last_ts, _, value) in zip(nxt, state)]
                ids, mask = torch.tensor(nxt, dtype=torch.long, device=d.device)[:, None], d.suppress
        return rows

    # --- whole recordings ----------------------------------------------------------------------------------------
    def transcribe(self, features: "torch.Tensor", frames: Sequence[int], options: DecodeOptions, *,
                   progress: Progress | None = None, condition_on_previous: bool = False,
                   batch_size: int = 8) -> tuple[list[str], list[str | None]]:
        """Transcripts (and languages) of recordings given as one padded feature tensor (batch, mels, frames) and
        each one's real length in mel frames. `progress(done_s, total_s)` is called before the first window and
        after every window batch."""
        import torch

        d = self.d
        n = features.shape[0]
        frames = [int(f) for f in frames]
        seek = [0] * n
        kept: list[list[int]] = [[] for _ in range(n)]
        codes: list[str | None] = [options.code if d.multilingual else "en"] * n
        total_s = sum(frames) / FRAMES_PER_SECOND

        def report() -> None:
            if progress is not None:
                progress(sum(min(s, f) for s, f in zip(seek, frames)) / FRAMES_PER_SECOND, total_s)

        report()
        while True:
            active = [i for i in range(n) if seek[i] < frames[i]]
            if not active:
                break
            group = active[:1] if condition_on_previous else active[:batch_size]
            span = [min(frames[i] - seek[i], WINDOW_FRAMES) for i in group]
            windows = torch.zeros((len(group), features.shape[1], WINDOW_FRAMES), dtype=features.dtype, device=features.device)
            for row, (i, width) in enumerate(zip(group, span)):
                windows[row, :, :width] = features[i, :, seek[i]: seek[i] + width]
            with torch.inference_mode():
                enc = d.base.model.encoder(windows).last_hidden_state  # once per window
            if d.multilingual and options.code is None and any(seek[i] == 0 for i in group):
                self.detect(enc, group, seek, codes)
            prompts = [self.prompt(codes[i], options.task) for i in group]
            if condition_on_previous and kept[group[0]] and self.prev_sot is not None:
                history = kept[group[0]][-(d.max_positions // 2 - 1):]
                prompts = [[int(self.prev_sot), *history, *prompts[0]]]
            for i, width, seq in zip(group, span, self.decode_windows(enc, prompts, options.max_new_tokens)):
                step = seek_step(seq, self.timestamp_begin, width)
                kept[i] += step.tokens
                seek[i] += step.advance
            report()
        texts = d.tokenizer.batch_decode(kept, skip_special_tokens=True)
        return [t.strip() for t in texts], codes

    def detect(self, enc, group: list[int], seek: list[int], codes: list[str | None]) -> None:
        """The language of each item on its first window (from the first decoder step's logits)."""
        import torch

        d = self.d
        first = [row for row, i in enumerate(group) if seek[i] == 0]
        with torch.inference_mode():
            sot = torch.full((len(first), 1), d.sot, dtype=torch.long, device=d.device)
            hidden = d.base.model.decoder(input_ids=sot, encoder_hidden_states=enc[first], use_cache=False).last_hidden_state
            lang_ids = (d.logits(hidden) + d.lang_mask).argmax(-1).tolist()
        for row, lang in zip(first, lang_ids):
            codes[group[row]] = d.id_to_lang.get(int(lang), "en")
