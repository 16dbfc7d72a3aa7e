"""hub: a Hugging Face dataset of parquet files, or a local folder of parquet or audiofolder files.

Audio columns are cast to `Audio(decode=False)` before any row is read: datasets would decode through
torchcodec otherwise. Hub failures are mapped to messages a user can act on (`_hub_error`).
"""

from __future__ import annotations

from pathlib import Path

from whisper_studio import util
from whisper_studio.errors import ConfigError, DataSourceError, OfflineError, StudioError
from whisper_studio.sources import tables
from whisper_studio.sources.base import COLUMNS, Input, LoadReport, Source, check_inside, make_dataset, report_progress

_ALTERNATIVES = "Offline, use the demo source (synthetic speech) or a local Common Voice folder (cv-folder)."


def _metadata_file(directory: Path) -> Path | None:
    for name in ("metadata.csv", "metadata.jsonl", "metadata.parquet"):
        if (directory / name).is_file():
            return directory / name
    return None


def read_audiofolder(folder: Path, src, splits, locale: str, report: LoadReport):
    """A local "audiofolder" (audio files + metadata.csv/.jsonl, optionally in train/ test/ subfolders),
    read without datasets' audiofolder builder, which encodes through torchcodec. Every `file_name` must lie
    inside the folder (`check_inside`); missing clips and blank sentences are skipped and counted."""
    import datasets

    out = {}
    for split in splits:
        directory = folder / split if (folder / split).is_dir() else None
        if directory is None and split == "test" and (folder / "validation").is_dir():
            directory = folder / "validation"
        meta = _metadata_file(directory) if directory is not None else None
        table = tables.read_table(meta) if meta is not None else None
        if table is None and directory is None and _metadata_file(folder) is not None:
            directory = folder
            table = tables.read_table(_metadata_file(folder))
            if "split" in table.columns:
                keep = [i for i, row in enumerate(table.rows) if str(row.get("split", "")).strip() == split]
                table.rows, table.lines = [table.rows[i] for i in keep], [table.lines[i] for i in keep]
        if table is None:
            raise DataSourceError(f"{folder} has no {split}/metadata.csv (or metadata.jsonl) for the {split!r} split.")
        audio_column = tables.pick_column(table, "file_name" if "file_name" in table.columns else src.audio_column,
                                          tables.AUDIO_COLUMNS, "audio file")
        text_column = tables.pick_column(table, src.text_column, tables.TEXT_COLUMNS, "text")
        # The folder, not the split subfolder, bounds what may be read: `../other_split/x.wav` is fine.
        rows = tables.table_rows(directory, table, split=split, locale=locale, report=report,
                                 audio_column=audio_column, text_column=text_column, bound=folder)
        if not rows["id"]:
            raise DataSourceError(f"{directory} lists no audio files that exist for the {split!r} split"
                                  f"{tables.describe_skips(report, split)}.")
        out[split] = make_dataset(rows)
    return datasets.DatasetDict(out)


def _hub_error(exc: Exception, repo: str) -> StudioError:
    text = str(exc)
    name = type(exc).__name__
    if "scripts are no longer supported" in text:
        return DataSourceError(
            f"{repo} is a script-based dataset, which the datasets library (v4+) no longer runs. Use a repo with "
            "parquet files (look for a 'refs/convert/parquet' branch or a parquet mirror), or another source."
        )
    if "gated dataset" in text:
        return DataSourceError(
            f"{repo} is gated: accept its terms on huggingface.co/datasets/{repo} and log in (`hf auth login` or "
            "set HF_TOKEN) before loading it."
        )
    if "doesn't exist on the Hub" in text or name in ("DatasetNotFoundError", "RepositoryNotFoundError"):
        return DataSourceError(f"No dataset {repo!r} on the Hugging Face hub (or it is private). Check the id, e.g. 'owner/name'.")
    if isinstance(exc, ConnectionError) or "OfflineModeIsEnabled" in text or "Couldn't reach" in text:
        return OfflineError(f"Cannot reach the Hugging Face hub for {repo!r} and no cached copy exists. {_ALTERNATIVES}")
    if "torchcodec" in text:
        return DataSourceError(
            f"{repo} stores audio in a form datasets can only decode through torchcodec, which is not available here. "
            "Use a repo with parquet files (audio as bytes) or download it and load the folder."
        )
    if "Unknown split" in text or "Bad split" in text:
        return DataSourceError(f"{repo}: {text}")
    if name in ("DataFilesNotFoundError", "EmptyDatasetError", "FileNotFoundError", "FileNotFoundDatasetsError"):
        return DataSourceError(f"{repo} has no data files datasets can read (parquet, csv, json): {text}")
    if "config name is missing" in text.lower() or "BuilderConfig" in text:
        return DataSourceError(f"{repo} needs a configuration name (subset): {text}")
    return DataSourceError(f"Could not load {repo!r} from the hub: {name}: {text}")


def _load_hub(src, language, splits, progress, report):
    import datasets

    # 1. A local folder: audiofolder read here, parquet through datasets; a hub id needs the hub (or its cache).
    repo = src.dataset_id.strip()
    local = Path(repo).expanduser()
    if local.is_dir():
        has_parquet = any(local.rglob("*.parquet"))
        has_meta = any(local.glob("metadata.*")) or any(local.glob("*/metadata.*"))
        if has_meta and not has_parquet:
            report.root = str(local)
            return read_audiofolder(local, src, splits, language.locale, report)
        repo = str(local)
    elif util.env_true("HF_HUB_OFFLINE") or util.env_true("HF_DATASETS_OFFLINE"):
        # The flags datasets itself obeys (not util.hub_offline, which adds TRANSFORMERS_OFFLINE): datasets
        # answers at once from its cache, or with a connection error we translate.
        pass
    elif not util.hub_reachable():
        raise OfflineError(f"Cannot reach the Hugging Face hub (huggingface.co) to load {repo!r}. {_ALTERNATIVES}")

    # 2. Each split, falling back from test to validation/dev where a dataset names it so.
    out = {}
    for i, split in enumerate(splits):
        report_progress(progress, i / max(1, len(splits)), f"Loading {repo} [{split}]")
        candidates = [split] + (["validation", "dev"] if split == "test" else []) + (["dev"] if split == "validation" else [])
        ds, last_error = None, None
        for name in candidates:
            try:
                ds = datasets.load_dataset(repo, src.hub_config, split=name)
                if name != split:
                    report.notes.append(f"{repo} has no {split!r} split; using {name!r}.")
                break
            except ValueError as exc:  # unknown split: try the next name
                if "split" not in str(exc).lower():
                    raise _hub_error(exc, repo) from None
                last_error = exc
            except Exception as exc:  # noqa: BLE001 - translated to a message the user can act on
                if isinstance(exc, StudioError):
                    raise
                raise _hub_error(exc, repo) from None
        if ds is None:
            raise DataSourceError(f"{repo} has no {split!r} split ({last_error}).")
        if isinstance(ds, datasets.DatasetDict):  # defensive: split= always gives a Dataset
            ds = ds[next(iter(ds))]
        out[split] = _normalize_hub_split(ds, src, language.locale, split, repo)
        _check_audio_paths(out[split], local if local.is_dir() else None, repo, split)
    report_progress(progress, 1.0, f"Loaded {repo}")
    return datasets.DatasetDict(out)


def _check_audio_paths(ds, local: Path | None, repo: str, split: str) -> None:
    """Rows that carry no audio bytes are read from their `path`: it must lie inside the dataset's folder (a
    local dataset) or the datasets/hub caches (a downloaded one). A parquet file whose path column says
    /etc/passwd is refused, naming the row. Checked through Arrow, without materialising the audio bytes."""
    import pyarrow.compute as pc

    column = ds.data.column("audio")
    if column.null_count == len(column) or not len(column):
        return
    bytes_ = pc.struct_field(column, "bytes")
    paths = pc.struct_field(column, "path")
    no_bytes = pc.or_(pc.is_null(bytes_), pc.equal(pc.binary_length(bytes_), 0))
    indices = pc.indices_nonzero(pc.fill_null(no_bytes, True)).to_pylist()
    if not indices:
        return
    if local is not None:
        roots = [local]
    else:
        import datasets
        from huggingface_hub import constants

        roots = [Path(datasets.config.HF_DATASETS_CACHE), Path(constants.HF_HUB_CACHE)]
    for i in indices:
        value = paths[i].as_py()
        where = f"{repo} [{split}] row {i}"
        if not value:
            raise DataSourceError(f"{where} has neither audio bytes nor an audio file path.")
        if not Path(value).is_absolute():  # it would be read relative to the working directory
            raise DataSourceError(f"{where} names the audio file {value!r} by a relative path and holds no audio "
                                  "bytes; store the audio in the parquet file (datasets' Audio feature does).")
        for root in roots:
            try:
                check_inside(root, Path(value).resolve().relative_to(root.resolve()), where=where)
                break
            except (ValueError, DataSourceError):
                continue
        else:
            raise DataSourceError(f"{where} names the audio file {value!r}, outside the dataset folder; refusing to read it.")


def _normalize_hub_split(ds, src, locale: str, split: str, repo: str):
    import datasets

    missing = [c for c in (src.audio_column, src.text_column) if c not in ds.column_names]
    if missing:
        raise DataSourceError(
            f"{repo} [{split}] has no column(s) {', '.join(repr(c) for c in missing)}; its columns are "
            f"{', '.join(ds.column_names)}. Set the audio and text column names to match."
        )
    # Cast before anything touches a row: datasets would otherwise decode audio through torchcodec.
    ds = ds.cast_column(src.audio_column, datasets.Audio(decode=False))
    if src.audio_column != "audio":
        if "audio" in ds.column_names:
            ds = ds.remove_columns("audio")
        ds = ds.rename_column(src.audio_column, "audio")
    if src.text_column != "sentence":
        if "sentence" in ds.column_names:
            ds = ds.remove_columns("sentence")
        ds = ds.rename_column(src.text_column, "sentence")
    drop = [c for c in ds.column_names if c not in ("audio", "sentence", "id")]
    ds = ds.remove_columns(drop)
    n = len(ds)
    ds = ds.add_column("locale", [locale] * n).add_column("split", [split] * n)
    if "id" not in ds.column_names:
        ds = ds.add_column("id", [f"{split}-{i:06d}" for i in range(n)])
    else:
        ds = ds.cast_column("id", datasets.Value("string"))
    if ds.features["sentence"].dtype != "string":
        ds = ds.cast_column("sentence", datasets.Value("string"))
    return ds.select_columns(list(COLUMNS))


class HubSource(Source):
    kind = "hub"
    label = "Hugging Face dataset"
    fields = ("dataset_id", "hub_config", "audio_column", "text_column")
    required = ("dataset_id",)
    inputs = (
        Input("hub_id", "dataset_id", "Hugging Face dataset id", elem_id="hub-id", scale=2,
              placeholder="user/dataset (parquet or audiofolder)"),
        Input("hub_config", "hub_config", "Configuration", placeholder="optional"),
        Input("hub_audio", "audio_column", "Audio column", value="audio"),
        Input("hub_text", "text_column", "Text column", value="sentence"),
    )

    def check(self, src) -> None:
        if not src.dataset_id:
            raise ConfigError("The hub source needs a Hugging Face dataset id.")

    def load(self, src, language, splits, progress, report, *, api_key=None):
        return _load_hub(src, language, splits, progress, report)

    def describe(self, src) -> str:
        return f"Hugging Face dataset {src.dataset_id}"
