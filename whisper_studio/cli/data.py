"""`python -m whisper_studio data`: load a data source and print clips and hours per split."""

from __future__ import annotations

import json

from whisper_studio import sources


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("data", help="load a data source and print clips and hours per split",
                              description="Load a data source and print clips and hours per split.")
    p.add_argument("--source", choices=sources.kinds(), default="demo", help="where the data comes from (default: demo)")
    p.add_argument("--language", default="mr", help="Common Voice locale, Whisper code or name (default: mr)")
    p.add_argument("--path", help="cv-folder: the release folder (cv-corpus-*/<locale>)")
    p.add_argument("--dataset-id", help="mdc: the dataset id; hub: the repo id (or a local folder)")
    p.add_argument("--config", dest="hub_config", help="hub: the dataset configuration (subset)")
    p.add_argument("--audio-column", default="audio", help="hub: audio column (default: audio)")
    p.add_argument("--text-column", default="sentence", help="hub: text column (default: sentence)")
    p.add_argument("--splits", default="train,test", help="comma-separated splits (default: train,test)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from whisper_studio import data, languages
    from whisper_studio.config import SourceConfig

    # 1. Flags -> a validated SourceConfig, the language resolved once.
    lang = languages.resolve(args.language)
    src = SourceConfig(kind=args.source, language=lang.locale, path=args.path, dataset_id=args.dataset_id,
                       audio_column=args.audio_column, text_column=args.text_column, hub_config=args.hub_config)
    # 2. Load and measure.
    report = data.LoadReport()
    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    dsd = data.load_source(src, splits, report=report)
    summary = data.summarize(dsd)
    overlap = data.shared_sentences(dsd)
    # 3. Print.
    if args.json:
        print(json.dumps({"source": src.kind, "language": lang.locale, "synthetic": report.synthetic,
                          "root": report.root, "missing_clips": report.missing_clips,
                          "skipped_empty": report.skipped_empty, "skipped_corrupt": report.skipped_corrupt,
                          "splits": summary,
                          "shared_sentences": {f"{a}/{b}": n for (a, b), n in overlap.items()},
                          "notes": report.notes}, ensure_ascii=False, indent=2))
        return 0
    title = f"{src.kind} · {lang.label}"
    if report.synthetic:
        title += " · SYNTHETIC speech (eSpeak NG), for trying the pipeline only"
    print(title)
    if report.root:
        print(f"folder: {report.root}")
    for split, row in summary.items():
        print(f"  {split:<10} {row['clips']:>8} clips  {row['hours']:>8.3f} h")
    for (a, b), n in overlap.items():
        verdict = "disjoint" if n == 0 else f"{n} sentence(s) in both: a model may have heard these test sentences"
        print(f"  {a} / {b}: {verdict}")
    for split, n in report.missing_clips.items():
        print(f"note: {n} {split} row(s) skipped: their clip is missing from clips/")
    for split, n in report.skipped_empty.items():
        print(f"note: {n} {split} row(s) skipped: their sentence is empty")
    for split, n in report.skipped_corrupt.items():
        print(f"note: {n} {split} row(s) skipped: the file is empty or not audio")
    for note in report.notes:
        print(f"note: {note}")
    return 0
