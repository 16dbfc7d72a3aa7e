"""The sources registry: adding a source is one Source subclass + one registration, and every part of the app
(config validation, the data CLI, the Data tab, load_source) picks it up. Shown with a test-only source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_studio import data, sources
from whisper_studio.config import SourceConfig
from whisper_studio.errors import ConfigError, DataSourceError
from whisper_studio.languages import Language


class WavFolderSource(sources.Source):
    """Test-only: one folder of `<id>.wav` clips, each with its transcript in `<id>.txt`; every clip in every
    requested split (enough to show the plumbing)."""

    kind = "wav-folder"
    label = "One folder of WAV files (test)"
    fields = ("path",)
    required = ("path",)

    def __init__(self):
        self.languages_seen = []

    def load(self, src, language, splits, progress, report, *, api_key=None):
        import datasets

        from whisper_studio.sources.base import empty_rows, make_dataset

        self.languages_seen.append(language)
        folder = Path(src.path)
        report.root = str(folder)
        out = {}
        for split in splits:
            rows = empty_rows()
            for clip in sorted(folder.glob("*.wav")):
                rows["audio"].append(str(clip))
                rows["sentence"].append(clip.with_suffix(".txt").read_text(encoding="utf-8").strip())
                rows["locale"].append(language.locale)
                rows["split"].append(split)
                rows["id"].append(clip.stem)
            out[split] = make_dataset(rows)
        return datasets.DatasetDict(out)


@pytest.fixture
def wav_source():
    source = sources.register(WavFolderSource())
    try:
        yield source
    finally:
        sources.unregister(source.kind)
    assert source.kind not in sources.kinds()


@pytest.fixture
def wav_folder(tmp_path):
    folder = tmp_path / "wavs"
    folder.mkdir()
    sr = 16000
    for i, text in enumerate(["one tone", "two tones", "three tones"]):
        t = np.arange(int((0.5 + 0.25 * i) * sr)) / sr
        sf.write(folder / f"clip{i}.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
        (folder / f"clip{i}.txt").write_text(text, encoding="utf-8")
    return folder


def test_builtin_registry_order_and_unknown_kind():
    assert sources.kinds() == ("demo", "mdc", "cv-folder", "hub", "folder")
    assert all(sources.get(kind).label for kind in sources.kinds())
    with pytest.raises(ConfigError, match="Unknown data source 'ftp'.*demo, mdc, cv-folder, hub, folder"):
        sources.get("ftp")
    clash = WavFolderSource()
    clash.kind = "demo"
    with pytest.raises(ConfigError, match="registered already"):
        sources.register(clash)
    assert sources.get("demo") is not clash


def test_describe_lines_for_the_model_card():
    assert "demo" in sources.get("demo").describe(SourceConfig(kind="demo", language="mr"))
    assert sources.get("cv-folder").describe(SourceConfig(kind="cv-folder", language="mr", path="/x")) == \
        "local Common Voice release (/x)"
    assert sources.get("hub").describe(SourceConfig(kind="hub", language="mr", dataset_id="o/n")) == \
        "Hugging Face dataset o/n"


def test_a_registered_source_is_valid_in_source_config(wav_source, wav_folder):
    src = SourceConfig(kind="wav-folder", language="en", path=str(wav_folder))
    assert src.kind == "wav-folder"
    with pytest.raises(ConfigError, match="path"):
        SourceConfig(kind="wav-folder", language="en")
    assert wav_source.describe(src) == f"One folder of WAV files (test) ({wav_folder})"


def test_a_registered_source_loads_through_load_source(wav_source, wav_folder):
    report = data.LoadReport()
    dsd = data.load_source(SourceConfig(kind="wav-folder", language="English", path=str(wav_folder)),
                           splits=("train",), report=report)
    assert report.kind == "wav-folder" and report.root == str(wav_folder)
    assert dsd["train"].column_names == list(data.COLUMNS) and len(dsd["train"]) == 3
    assert dsd["train"][1]["sentence"] == "two tones" and dsd["train"][1]["locale"] == "en"
    assert data.summarize(dsd)["train"]["hours"] == pytest.approx((0.5 + 0.75 + 1.0) / 3600, abs=1e-4)
    # The language reaches the source resolved, once, as a Language
    assert len(wav_source.languages_seen) == 1 and isinstance(wav_source.languages_seen[0], Language)


def test_a_registered_source_is_a_data_cli_choice(wav_source, wav_folder, capsys):
    from whisper_studio.cli import build_parser, main

    parser = build_parser()
    data_parser = next(a for a in parser._subparsers._group_actions if a.dest == "command").choices["data"]
    choices = next(a for a in data_parser._actions if a.dest == "source").choices
    assert "wav-folder" in choices and "demo" in choices
    assert main(["data", "--source", "wav-folder", "--path", str(wav_folder), "--language", "en",
                 "--splits", "train", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "wav-folder" and out["splits"]["train"]["clips"] == 3


def test_a_registered_source_is_in_the_data_tab(wav_source, wav_folder):
    import gradio as gr

    from helpers import no_progress
    from whisper_studio.ui import data_tab

    with gr.Blocks():
        tab = data_tab.build()
    assert ("One folder of WAV files (test)", "wav-folder") in [tuple(c) for c in tab.form["kind"].choices]
    assert "wav-folder" in tab.groups and "wav-folder-path" in tab.form.components
    values = {"language": "en", "kind": "wav-folder", "wav-folder-path": str(wav_folder)}
    assert data_tab.source_config(values).path == str(wav_folder)
    out = data_tab.load_data(values, progress=no_progress)
    assert out[0].startswith("✅") and "One folder of WAV files (test)" in out[0]
    assert {r[0]: r[1] for r in out[1]} == {"train": 3, "test": 3}


# ---------------------------------------------------------------------------------------------- your own data (12.1 b, c)
def _tone(path: Path, seconds=0.5, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)


TEXTS = [f"sentence number {word}" for word in "one two three four five six seven eight nine ten".split()]


def _load(path, report=None, splits=("train", "test")):
    return data.load_source(SourceConfig(kind="folder", language="en", path=str(path)), splits=splits,
                            report=report if report is not None else data.LoadReport())


def test_ljspeech_folder_split_by_sentence_with_skips_counted(tmp_path):
    folder = tmp_path / "lj"
    lines = []
    for i, text in enumerate(TEXTS):
        _tone(folder / "wavs" / f"LJ{i:03d}.wav")
        lines.append(f"LJ{i:03d}|{text}|{text}")
    lines += ["LJ100|a clip that is not there|x", "LJ001b| |", "LJ102|not audio|x"]
    _tone(folder / "wavs" / "LJ001b.wav")
    (folder / "wavs" / "LJ102.wav").write_text("hello")
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = data.LoadReport()
    dsd = _load(folder, report)
    train, test = set(dsd["train"]["sentence"]), set(dsd["test"]["sentence"])
    assert train | test == set(TEXTS) and not train & test and 1 <= len(test) <= 3
    assert dsd["train"][0]["id"].startswith("LJ")
    skipped = {k: sum(v.values()) for k, v in (("missing", report.missing_clips), ("empty", report.skipped_empty),
                                               ("corrupt", report.skipped_corrupt))}
    assert skipped == {"missing": 1, "empty": 1, "corrupt": 1}
    assert any("held out for test" in n for n in report.notes)


def test_csv_with_header_and_split_column_from_a_zip(tmp_path):
    import zipfile

    src = tmp_path / "mine"
    rows = ["file,transcription,split"]
    for i, text in enumerate(TEXTS[:4]):
        _tone(src / "audio" / f"{i}.wav")
        rows.append(f"{i}.wav,\"{text}, said twice\",{'test' if i == 3 else 'train'}")
    (src / "transcripts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in src.rglob("*"):
            zf.write(p, Path("mine") / p.relative_to(src))
    dsd = _load(archive)
    assert (len(dsd["train"]), len(dsd["test"])) == (3, 1)
    assert dsd["test"][0]["sentence"] == f"{TEXTS[3]}, said twice"
    assert _load(archive)["train"]["id"] == dsd["train"]["id"]  # unpacked once, read again


def test_own_folder_refuses_paths_outside_and_names_missing_table(tmp_path):
    folder = tmp_path / "evil"
    _tone(folder / "a.wav")
    (folder / "metadata.csv").write_text("file_name,text\na.wav,hello\n/etc/passwd,secrets\n", encoding="utf-8")
    with pytest.raises(DataSourceError, match=r"'/etc/passwd' \(metadata\.csv line 3\).*absolute path"):
        _load(folder)
    (tmp_path / "bare").mkdir()
    with pytest.raises(DataSourceError, match="no transcript table"):
        _load(tmp_path / "bare")


def test_spontaneous_speech_layout(tmp_path):
    folder = tmp_path / "sps-corpus-1.0" / "en"
    header = ["client_id", "audio_id", "audio_file", "duration_ms", "prompt_id", "prompt", "transcription", "votes",
              "age", "gender", "language", "split"]
    lines = ["\t".join(header)]
    for i, (text, split) in enumerate([("well I think so", "train"), ("it rained all day", "train"),
                                       ("", "train"), ("we went home", "dev"), ("see you soon", "test")]):
        name = f"spontaneous-speech-en-{i}.mp3"
        t = np.arange(int(0.5 * 48000)) / 48000
        (folder / "audios").mkdir(parents=True, exist_ok=True)
        sf.write(folder / "audios" / name, (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 48000, format="MP3")
        lines.append("\t".join(["c", str(i), name, "500", "p", "a prompt", text, "2", "", "", "en", split]))
    (folder / "ss-corpus-en.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = data.LoadReport()
    dsd = data.load_source(SourceConfig(kind="cv-folder", language="en", path=str(tmp_path / "sps-corpus-1.0")),
                           splits=("train", "dev", "test"), report=report)
    assert (len(dsd["train"]), len(dsd["dev"]), len(dsd["test"])) == (2, 1, 1)
    assert report.skipped_empty == {"train": 1} and dsd["test"][0]["sentence"] == "see you soon"
    assert _load(folder, splits=("test",))["test"][0]["sentence"] == "see you soon"  # the folder source too
