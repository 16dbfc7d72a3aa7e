"""What the Evaluate tab shows for an evaluation: the summary, the bar chart's frame, the per-utterance table
and the side-by-side comparison of several evaluations. Pure functions of an EvalResult (or its eval.json
dict), so they are tested without a model.

Every WER and CER on the page is text made by `scoring.percent` / `scoring.points`: a fraction is always
multiplied by 100 (a WER of 2.1 is 210%, insertions make it exceed 100%), nowhere else is that rule written.
"""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path
from typing import Any

import pandas as pd

from whisper_studio.scoring import percent, points
from whisper_studio.ui import common
from whisper_studio.ui.common import empty_frame, esc

SORTS = [
    ("Dataset order", "order"),
    ("Adapted got better first", "better"),
    ("Adapted got worse first", "worse"),
    ("Most base errors first", "base"),
    ("Most adapted errors first", "adapted"),
    ("Flagged (hallucination audit) first", "flags"),
]
WER_ORDER = ["base", "adapted", "base (norm.)", "adapted (norm.)"]
WER_COLUMNS = {"WER of": "str", "WER %": "float64"}

# One line per normalizer name (scoring.normalizer_for): what "normalized" means on this page.
NORMALIZERS = {
    "script-aware": "script-aware (Unicode NFC, case folded, punctuation and symbols removed, vowel signs and "
                    "other combining marks kept)",
    "whisper-english": "Whisper's English normalizer (case, punctuation, numbers and spellings standardised)",
}
WER_NOTE = "WER can exceed 100%: every inserted word counts as an error."

CSS = """
#eval-table table { width: 100%; border-collapse: collapse; font-size: 0.92em; table-layout: fixed; }
#eval-table th, #eval-table td { border-bottom: 1px solid var(--border-color-primary); padding: 6px; vertical-align: top; text-align: left; overflow-wrap: anywhere; word-break: break-word; }
#eval-table col.c-i { width: 3em; } #eval-table col.c-audio { width: 220px; } #eval-table col.c-d { width: 4em; }
#eval-table col.c-flags { width: 7em; }
#eval-table audio { width: 210px; height: 32px; }
#eval-table .ws-sub { background: #fde68a; color: #000; border-radius: 3px; padding: 0 2px; }
#eval-table .ws-ins { background: #bfdbfe; color: #000; border-radius: 3px; padding: 0 2px; }
#eval-table .ws-del { background: #fecaca; color: #000; text-decoration: line-through; border-radius: 3px; padding: 0 2px; }
#eval-table .better { color: #15803d; font-weight: 600; }
#eval-table .worse { color: #b91c1c; font-weight: 600; }
#eval-table .flag { background: #fee2e2; color: #7f1d1d; border-radius: 3px; padding: 0 3px; margin: 1px; display: inline-block; }
#eval-table .legend span { margin-right: 12px; }
#eval-compare table, #eval-summary table { font-size: 0.92em; }
"""


def get(row: Any, *names: str, default=None):
    """A field of an engine object or its eval.json dict (older files lack the newer fields)."""
    for name in names:
        value = row.get(name) if isinstance(row, dict) else getattr(row, name, None)
        if value is not None:
            return value
    return default


def language_name(code: Any) -> str:
    """'Marathi' for 'mr' (names, not codes, on the page); the code itself when it is not a known language."""
    from whisper_studio.languages import resolve

    try:
        return resolve(code).english
    except Exception:  # noqa: BLE001 - an unknown code is shown as it is
        return str(code or "?")


# --- per-utterance rows -------------------------------------------------------------------------------------
def _norm_op(op: str) -> str:
    op = str(op).lower()
    if op.startswith(("s", "r")):  # substitute / substitution / replace
        return "sub"
    if op.startswith("i"):
        return "ins"
    if op.startswith("d"):
        return "del"
    return "ok"


def marked(ref: str, hyp: str) -> tuple[str, int]:
    """The hypothesis as HTML with its word errors marked against the reference, and the error count."""
    from whisper_studio.scoring import word_errors

    out, errors = [], 0
    for op, ref_word, hyp_word in word_errors(ref or "", hyp or ""):
        kind = _norm_op(op)
        if kind == "ok":
            out.append(esc(hyp_word if hyp_word is not None else ref_word))
            continue
        errors += 1
        if kind == "sub":
            out.append(f'<span class="ws-sub" title="reference: {esc(ref_word)}">{esc(hyp_word)}</span>')
        elif kind == "ins":
            out.append(f'<span class="ws-ins" title="inserted">{esc(hyp_word)}</span>')
        else:
            out.append(f'<span class="ws-del" title="missing">{esc(ref_word)}</span>')
    return " ".join(out) or "<i>(empty)</i>", errors


def _audio_url(path: str | None) -> str | None:
    """The page's URL for a clip: only clips that decode as audio are copied into the served folder."""
    if not path or not isinstance(path, str) or not Path(path).is_file():
        return None
    try:
        served = common.servable(path)
    except Exception:  # noqa: BLE001 - a clip that cannot be served is shown without a player
        common.log.info("clip %s not served", path, exc_info=True)
        return None
    # Relative URL: works at the server root and behind a path prefix (Spaces, reverse proxies).
    return "gradio_api/file=" + urllib.parse.quote(str(Path(served).resolve()))


def table_rows(rows: list[Any]) -> list[dict]:
    """Engine rows (objects or eval.json dicts) -> what the HTML table needs, computed once per evaluation."""
    out = []
    for i, row in enumerate(rows):
        ref = get(row, "reference", "ref", "sentence", default="")
        base = get(row, "base", "base_text", "hyp_base", default="")
        adapted = get(row, "adapted", "adapted_text", "hyp_adapted", default="")
        base_html, base_err = marked(ref, base)
        adapted_html, adapted_err = marked(ref, adapted)
        out.append({
            "i": i + 1,
            "id": get(row, "id", default=str(i + 1)),
            "audio": _audio_url(get(row, "audio_path", "path", "audio")),
            "ref": esc(ref),
            "base": base_html,
            "adapted": adapted_html,
            "base_err": base_err,
            "adapted_err": adapted_err,
            "base_rate": get(row, "base_wer"),
            "adapted_rate": get(row, "adapted_wer"),
            "flags": list(get(row, "flags", default=()) or ()),
        })
    return out


def render_table(rows: list[dict], sort: str) -> str:
    if not rows:
        return "<p>No evaluation yet: choose a run and press <b>Evaluate</b>.</p>"
    key = {
        "better": lambda r: (r["adapted_err"] - r["base_err"], r["i"]),
        "worse": lambda r: (r["base_err"] - r["adapted_err"], r["i"]),
        "base": lambda r: (-r["base_err"], r["i"]),
        "adapted": lambda r: (-r["adapted_err"], r["i"]),
        "flags": lambda r: (-len(r.get("flags") or ()), r["i"]),
    }.get(sort, lambda r: r["i"])
    body = []
    for r in sorted(rows, key=key):
        delta = r["adapted_err"] - r["base_err"]
        cls, text = ("better", f"{delta:+d}") if delta < 0 else (("worse", f"{delta:+d}") if delta > 0 else ("", "0"))
        audio = f'<audio controls preload="none" src="{esc(r["audio"])}"></audio>' if r["audio"] else "–"
        flags = "".join(f'<span class="flag">{esc(f)}</span>' for f in r.get("flags") or ()) or "–"
        body.append(
            f'<tr><td>{r["i"]}</td><td>{audio}</td><td class="ref">{r["ref"]}</td>'
            f'<td class="base">{r["base"]}<br><small>{_errors(r["base_err"], r.get("base_rate"))}</small></td>'
            f'<td class="adapted">{r["adapted"]}<br><small>{_errors(r["adapted_err"], r.get("adapted_rate"))}</small></td>'
            f'<td class="{cls}">{text}</td><td class="flags">{flags}</td></tr>'
        )
    legend = ('<div class="legend"><span class="ws-sub">substituted</span><span class="ws-ins">inserted</span>'
              '<span class="ws-del">missing</span> · Δ = adapted errors − base errors (negative: adapted is better)'
              ' · flags: the hallucination audit of the adapted text (repeats, insertions, empty, too long)</div>')
    cols = ('<colgroup><col class="c-i"><col class="c-audio"><col><col><col><col class="c-d"><col class="c-flags">'
            '</colgroup>')
    return (f"{legend}<table>{cols}<thead><tr><th>#</th><th>audio</th><th>reference</th><th>base</th>"
            f"<th>adapted</th><th>Δ</th><th>flags</th></tr></thead><tbody>{''.join(body)}</tbody></table>")


def _errors(count: int, rate: float | None) -> str:
    words = f"{count} error" + ("" if count == 1 else "s")
    return f"{words} · WER {percent(rate)}" if rate is not None else words


# --- summary ------------------------------------------------------------------------------------------------
def wer_frame(result: Any) -> pd.DataFrame:
    """The bar chart's numbers: percent as plain floats (the axis is labelled %)."""
    values = zip(WER_ORDER, [get(result, "base_wer"), get(result, "adapted_wer"),
                             get(result, "base_wer_normalized"), get(result, "adapted_wer_normalized")])
    rows = [(k, round(100 * float(v), 2)) for k, v in values if v is not None]
    return pd.DataFrame(rows, columns=list(WER_COLUMNS)).astype(WER_COLUMNS) if rows else empty_frame(**WER_COLUMNS)


def _row(label: str, base: float | None, adapted: float | None, bold: bool = False) -> str:
    change = points(adapted - base) if base is not None and adapted is not None else "—"
    cells = [label, percent(base), percent(adapted), change]
    if bold:
        cells = [f"**{c}**" for c in cells]
    return "| " + " | ".join(cells) + " |"


def control_line(control: Any) -> str | None:
    """'English control: 6.1% → 6.4% (+0.3 pts, 20 clips)': the forgetting check, or None without one."""
    if control is None:
        return None
    # The same headline as evaluation.ControlResult.headline_values: normalized WER, or CER without spaces.
    field = "cer" if get(control, "headline", default="wer") == "cer" else "wer_normalized"
    base = get(control, f"base_{field}", "base_wer")
    adapted = get(control, f"adapted_{field}", "adapted_wer")
    n = get(control, "n")
    name = language_name(get(control, "language", "locale", default="en"))
    extra = [points(adapted - base)] if base is not None and adapted is not None else []
    if n:
        extra.append(f"{n} clips")
    tail = f" ({', '.join(extra)})" if extra else ""
    return f"{name} control: {percent(base)} → {percent(adapted)}{tail}"


def flagged_count(result: Any) -> tuple[int, int]:
    """(utterances flagged by the audit, utterances) from the summary, else counted from the rows."""
    rows = get(result, "rows", default=[]) or []
    summaries = get(result, "audit_summary") or {}
    # One summary per side (evaluation.EvalResult.audit_summary): the adapted side's flags, else the base's.
    audit = summaries.get("adapted") or summaries.get("base") or {}
    n = int(audit.get("n") or len(rows))
    flagged = audit.get("flagged")
    if flagged is None:
        flagged = sum(1 for r in rows if get(r, "flags"))
    return int(flagged), n


def summary(result: Any, run_name: str) -> str:
    """Markdown: the orthographic / normalized WER and CER, base vs adapted, the control row, the audit count."""
    n = get(result, "n", default=len(get(result, "rows", default=[]) or []))
    language = get(result, "language")
    head = [f"**{esc(run_name)}** on {n} held-out clips"]
    if language:
        head.append(esc(language_name(language)))
    created = get(result, "created")
    if created:
        head.append("evaluated " + time.strftime("%Y-%m-%d %H:%M", time.localtime(float(created))))
    skipped = get(result, "skipped", default=[]) or []
    if skipped:
        head.append(f"{len(skipped)} undecodable clips skipped")
    flagged, total = flagged_count(result)
    head.append(f"{flagged} of {total} adapted transcripts flagged by the audit")
    headline = get(result, "headline", default="wer")
    if get(result, f"base_{headline}") is None:
        headline = "wer"
    base, adapted = get(result, f"base_{headline}"), get(result, f"adapted_{headline}")
    if adapted is not None:
        head.append(f"{headline.upper()} base {percent(base)} → adapted {percent(adapted)} ({points(adapted - base)})")
    lines = [" · ".join(head), "", "| | base | adapted | change |", "|---|---|---|---|"]
    lines.append(_row("WER (orthographic)", get(result, "base_wer"), get(result, "adapted_wer"), headline == "wer"))
    lines.append(_row("WER (normalized)", get(result, "base_wer_normalized"), get(result, "adapted_wer_normalized")))
    if get(result, "base_cer") is not None:
        lines.append(_row("CER", get(result, "base_cer"), get(result, "adapted_cer"), headline == "cer"))
    lines.append("")
    control = control_line(get(result, "control"))
    if control:
        lines += [f"**{esc(control)}** (the forgetting check: another language, base vs adapted)", ""]
    normalizer = get(result, "normalizer", default="")
    explained = NORMALIZERS.get(normalizer, normalizer or "the normalizer")
    lines.append(f"_Orthographic: the text as written. Normalized: after {esc(explained)}. {WER_NOTE}_")
    return "\n".join(lines)


# --- comparison of several evaluations ------------------------------------------------------------------
def data_key(cfg: Any, split: str | None) -> str:
    """Which data an evaluation scored: evaluations with the same key are comparable side by side."""
    src = getattr(cfg, "source", None)
    if src is None:
        return "?"
    where = src.dataset_id or (Path(src.path).name if src.path else "")
    return " · ".join(x for x in (src.kind, language_name(src.language), where, split or "test") if x)


def compare_table(entries: list[tuple[str, Any, Any]]) -> str:
    """Markdown table of evaluations, grouped by the data they scored. `entries`: (run name, config, result)."""
    if not entries:
        return "_No saved evaluations for the chosen runs yet._"
    rows = []
    for name, cfg, result in entries:
        key = data_key(cfg, get(result, "split"))
        created = float(get(result, "created", default=0) or 0)
        rows.append((key, -created, name, cfg, result))
    lines = ["| data | run | evaluated | clips | WER base → adapted | change | CER base → adapted | control | flagged |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key, neg_created, name, cfg, result in sorted(rows, key=lambda r: (r[0], r[1])):
        base, adapted = get(result, "base_wer"), get(result, "adapted_wer")
        change = points(adapted - base) if base is not None and adapted is not None else "—"
        cer = (f"{percent(get(result, 'base_cer'))} → {percent(get(result, 'adapted_cer'))}"
               if get(result, "base_cer") is not None else "—")
        control = control_line(get(result, "control")) or "—"
        flagged, total = flagged_count(result)
        when = time.strftime("%m-%d %H:%M", time.localtime(-neg_created)) if neg_created else "—"
        lines.append(f"| {esc(key)} | {esc(name)} | {when} | {get(result, 'n', default='?')} | "
                     f"{percent(base)} → {percent(adapted)} | {change} | {cer} | {esc(control)} | {flagged}/{total} |")
    return "\n".join(lines)
