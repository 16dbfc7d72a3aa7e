"""Base model vs a run's adapter, utterance by utterance, scored the one way (whisper_studio/scoring.py).

    evaluate_run(RUN_DIR)   -> EvalResult, kept in RUN_DIR/evals/<created>.json and RUN_DIR/eval.json (run.py)
    evaluate_model(model_id, adapter_dir, dataset, language)   the reusable core (core.py)
    load_eval / list_evals / save_eval, EvalResult, UtteranceRow, ControlResult, format_summary (results.py)
    word_errors, corpus_wer, corpus_cer, normalizer_for   re-exported from scoring, where they are defined

What a result reports, all fractions (1.0 = 100%):
- WER as written (orthographic: case and punctuation count), normalized WER (Whisper's English normalizer for
  English, scoring's script-aware one for every other language: punctuation removed, vowel signs and viramas
  kept) and CER; the headline is CER for languages written without spaces (zh, ja, th, ...), normalized WER
  otherwise. `normalizer` and `headline` name which.
- A hallucination audit per utterance (repeated n-grams, insertions, empty output, length ratio; `flags`)
  and its summary per side (`audit_summary`).
- The forgetting check (`control`): base and adapter on a few clips of another language (English, German for
  an English run), so an adapter that damages what the base model already knew shows it.
- Base transcripts are cached per (model, exact clips, language, task, decoding settings), so evaluating a
  run again, or another run on the same data, skips the base pass.

The language is resolved once, at evaluate_run / evaluate_model, and passed down as a `languages.Language`.
Decoding is greedy with the language and task forced, as in training. `progress(done, total, message)` is
called once per batch with clips done out of all clips of the evaluation.
"""

from whisper_studio.evaluation.core import Eta, Progress, evaluate_model, token_budget
from whisper_studio.evaluation.results import (EVALS_DIR, ControlResult, EvalResult, ResultNotSaved, UtteranceRow,
                                               control_text, format_summary, headline_text, list_evals, load_eval,
                                               save_eval)
from whisper_studio.evaluation.run import CONTROL_CLIPS, default_control_language, evaluate_run
from whisper_studio.scoring import corpus_cer, corpus_wer, normalizer_for, word_errors

__all__ = ["CONTROL_CLIPS", "EVALS_DIR", "ControlResult", "Eta", "EvalResult", "Progress", "ResultNotSaved", "UtteranceRow",
           "control_text", "corpus_cer", "corpus_wer", "default_control_language", "evaluate_model", "evaluate_run",
           "format_summary", "headline_text", "list_evals", "load_eval", "normalizer_for", "save_eval",
           "token_budget", "word_errors"]
