"""data.py: every source to the same DatasetDict, features and labels, the collator, the data CLI."""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import socket
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_studio import data
from whisper_studio.config import SourceConfig
from whisper_studio.errors import DataSourceError, LanguageError, OfflineError

SHARED_CACHE = os.environ.get("WHISPER_STUDIO_CACHE")  # conftest's, kept between runs


@functools.lru_cache(maxsize=1)
def load_test_processor():
    """The bundled whisper-base processor (real multilingual tokenizer, 80 mel bins)."""
    from whisper_studio.models import load_processor

    return load_processor("bundled/whisper-base")


@pytest.fixture(scope="session")
def processor():
    # session scope: set up before the per-test cache below, so the bundled model is converted once into the
    # shared test cache rather than into every test's temporary folder
    return load_test_processor()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    # MDC downloads, sample files and feature caches go to this test's own folder
    monkeypatch.setenv("WHISPER_STUDIO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def tone(seconds, sr=48000, freq=220.0):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


SENTENCES = {
    "train": ["नमस्कार जग", 'तो म्हणाला "हो', "आज पाऊस पडला", "मी घरी जातो"],
    "dev": ["उद्या भेटू"],
    "test": ["पुस्तक वाचा", "पाणी प्या"],
}
HEADER = ["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes", "age",
          "gender", "accents", "variant", "locale", "segment"]


def make_release(root: Path, locale="mr", fmt="mp3", seconds=0.6, missing=("train",), sentences=SENTENCES) -> Path:
    """A tiny Common Voice release: cv-corpus-test/<locale>/{train,dev,test,validated}.tsv + clips/."""
    folder = root / "cv-corpus-99.0-test" / locale
    clips = folder / "clips"
    clips.mkdir(parents=True)
    n = 0
    validated = []
    for split, texts in sentences.items():
        lines = ["\t".join(HEADER)]
        for i, text in enumerate(texts):
            n += 1
            name = f"common_voice_{locale}_{n}.{fmt}"
            sf.write(clips / name, tone(seconds + 0.1 * i), 48000, format=fmt.upper())
            row = ["c" * 8, name, str(n), text, "", "2", "0", "", "", "", "", locale, ""]
            lines.append("\t".join(row))
        if split in missing:  # listed in the TSV, absent from clips/
            lines.append("\t".join(["x", f"common_voice_{locale}_999.{fmt}", "999", "गहाळ", "", "2", "0", "", "",
                                    "", "", locale, ""]))
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        validated += lines[1:]
    (folder / "validated.tsv").write_text("\n".join([("\t".join(HEADER))] + validated) + "\n", encoding="utf-8")
    return folder


def tar_gz(folder_root: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for child in sorted(folder_root.iterdir()):
            tf.add(child, arcname=child.name)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- cv-folder
def test_cv_folder_from_release_root(tmp_path):
    make_release(tmp_path / "rel")
    report, calls = data.LoadReport(), []
    dsd = data.load_source(SourceConfig(kind="cv-folder", language="Marathi", path=str(tmp_path / "rel")),
                           report=report, progress=lambda fraction, message: calls.append((fraction, message)))
    assert calls and calls[-1][0] == 1.0 and all(0 <= f <= 1 for f, _ in calls)
    assert set(dsd) == {"train", "test"}
    train = dsd["train"]
    assert train.column_names == list(data.COLUMNS)
    assert train.features["audio"].decode is False
    assert len(train) == 4 and report.missing_clips == {"train": 1}
    row = train[1]
    assert row["audio"]["bytes"] is None and row["audio"]["path"].endswith("common_voice_mr_2.mp3")
    assert row["sentence"] == 'तो म्हणाला "हो'  # an unbalanced quote survives (QUOTE_NONE)
    assert (row["locale"], row["split"], row["id"]) == ("mr", "train", "common_voice_mr_2")
    assert report.root.endswith(os.path.join("cv-corpus-99.0-test", "mr"))
    summary = data.summarize(dsd)
    assert summary["train"]["clips"] == 4
    expected_hours = sum(0.6 + 0.1 * i for i in range(4)) / 3600
    assert summary["train"]["hours"] == pytest.approx(expected_hours, abs=0.0002)
    rows = data.sample_rows(dsd, "test", 5)
    assert len(rows) == 2 and {r["sentence"] for r in rows} == set(SENTENCES["test"])
    assert all(Path(r["path"]).is_file() for r in rows)


def test_cv_folder_locale_dir_and_validation_split(tmp_path):
    folder = make_release(tmp_path, fmt="wav", missing=())
    dsd = data.read_cv_folder(folder, "mr", splits=("validation",))
    assert len(dsd["validation"]) == 1 and dsd["validation"][0]["sentence"] == "उद्या भेटू"


def test_cv_folder_errors(tmp_path):
    folder = make_release(tmp_path / "rel", locale="de", fmt="wav", missing=())
    with pytest.raises(DataSourceError, match=r"no 'mr' folder; it holds Common Voice locale\(s\) de"):
        data.read_cv_folder(tmp_path / "rel", "mr")
    with pytest.raises(DataSourceError, match="holds Common Voice locale 'de', but the chosen language is 'mr'"):
        data.read_cv_folder(folder, "mr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataSourceError, match="not a Common Voice release folder"):
        data.read_cv_folder(tmp_path / "empty", "mr")
    with pytest.raises(DataSourceError, match="Folder not found"):
        data.read_cv_folder(tmp_path / "nope", "mr")
    with pytest.raises(LanguageError):
        data.load_source(SourceConfig(kind="cv-folder", language="Klingon", path=str(tmp_path)))
    # a folder whose every clip is missing
    bare = tmp_path / "bare" / "mr"
    (bare / "clips").mkdir(parents=True)
    (bare / "train.tsv").write_text("path\tsentence\nx.mp3\thi\n")
    (bare / "test.tsv").write_text("path\tsentence\n")
    with pytest.raises(DataSourceError, match=r"no usable clips \(1 listed clips are missing"):
        data.read_cv_folder(bare, "mr")


def test_summarize_500_clips_is_fast(tmp_path):
    folder = tmp_path / "mr"
    (folder / "clips").mkdir(parents=True)
    lines = ["path\tsentence"]
    clip = io.BytesIO()
    sf.write(clip, tone(0.25, 16000), 16000, format="WAV", subtype="PCM_16")
    for i in range(500):
        (folder / "clips" / f"c{i}.wav").write_bytes(clip.getvalue())
        lines.append(f"c{i}.wav\tवाक्य {i}")
    (folder / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    dsd = data.read_cv_folder(folder, "mr", splits=("train",))
    start = time.perf_counter()
    summary = data.summarize(dsd)
    assert time.perf_counter() - start < 2.0
    assert summary == {"train": {"clips": 500, "hours": round(500 * 0.25 / 3600, 4)}}


# ---------------------------------------------------------------------------------------------- mdc
@pytest.fixture()
def mdc(tmp_path, monkeypatch):
    from mdc_server import FakeMDC

    make_release(tmp_path / "src")
    with FakeMDC() as server:
        server.add("cv-mr", tar_gz(tmp_path / "src"), "mcv-scripted-mr-v99.0.tar.gz")
        server.add("terms", tar_gz(tmp_path / "src"), "terms.tar.gz", forbidden=True)
        server.add("corrupt", b"\x1f\x8b" + os.urandom(4000), "corrupt.tar.gz")
        monkeypatch.setenv("MDC_API_URL", server.api_url)
        monkeypatch.setenv("MDC_API_KEY", server.api_key)
        yield server


def mdc_source(dataset_id="cv-mr"):
    return SourceConfig(kind="mdc", language="mr", dataset_id=dataset_id)


def test_mdc_download_extract_read_and_cache(mdc, isolated_cache):
    report = data.LoadReport()
    dsd = data.load_source(mdc_source(), report=report)
    assert (len(dsd["train"]), len(dsd["test"])) == (4, 2) and report.missing_clips == {"train": 1}
    assert Path(report.root).is_relative_to(isolated_cache / "mdc")
    assert (isolated_cache / "mdc" / "mcv-scripted-mr-v99.0.tar.gz").is_file()
    from whisper_studio.audio import load_audio

    assert abs(len(load_audio(dsd["train"][0]["audio"])) - 0.6 * 16000) < 0.05 * 16000  # the extracted mp3 decodes
    downloads = [r for r in mdc.requests if r["path"].startswith("/files/")]
    assert len(downloads) == 1
    # the key goes in the POST header only; the public details call and the pre-signed download carry none
    posts = [r for r in mdc.requests if r["method"] == "POST"]
    assert posts and all(r["auth"] == f"Bearer {mdc.api_key}" for r in posts)
    assert all(r["auth"] is None for r in mdc.requests if r["method"] == "GET")
    # second load: the archive and its extraction are reused, nothing is downloaded again
    data.load_source(mdc_source())
    assert len([r for r in mdc.requests if r["path"].startswith("/files/")]) == 1


def test_mdc_resumes_an_interrupted_download(mdc, isolated_cache, tmp_path):
    # bigger than the SDK's 64 KiB read size, so that part of it lands on disk before the cut
    src = tmp_path / "src"
    (src / "padding.bin").write_bytes(np.random.default_rng(0).bytes(400_000))
    mdc.add("big", tar_gz(src), "big.tar.gz")
    size = len(mdc.datasets["big"].archive)
    mdc.cut_next_download_at = size // 2
    with pytest.raises(DataSourceError, match="interrupted.*run it again.*resumes"):
        data.load_source(mdc_source("big"))
    part = isolated_cache / "mdc" / "big.tar.gz.part"
    done = part.stat().st_size
    assert 0 < done < size
    dsd = data.load_source(mdc_source("big"))
    assert len(dsd["train"]) == 4
    ranges = [r["range"] for r in mdc.requests if r["path"].startswith("/files/")]
    assert ranges == [None, f"bytes={done}-"]  # the second request asked only for the rest
    assert (isolated_cache / "mdc" / "big.tar.gz").stat().st_size == size


def test_mdc_key_errors(mdc, monkeypatch):
    monkeypatch.delenv("MDC_API_KEY")
    with pytest.raises(DataSourceError, match="needs an API key.*MDC_API_KEY"):
        data.load_source(mdc_source())
    with pytest.raises(DataSourceError, match=r"rejected the API key \(401\)") as err:
        data.load_source(mdc_source(), api_key="wrong-secret-456")
    assert "wrong-secret-456" not in str(err.value)
    assert "MDC_API_KEY" not in os.environ  # the explicit key was only lent to the SDK for the call
    dsd = data.load_source(mdc_source(), api_key=mdc.api_key)  # an explicit key works without the variable
    assert len(dsd["test"]) == 2
    assert "MDC_API_KEY" not in os.environ


def test_mdc_dataset_errors(mdc, isolated_cache):
    with pytest.raises(DataSourceError, match=r"no dataset 'nope' \(404\)"):
        data.load_source(mdc_source("nope"))
    with pytest.raises(DataSourceError, match=r"refused access.*\(403\).*accept the dataset's terms"):
        data.load_source(mdc_source("terms"))
    with pytest.raises(DataSourceError, match="corrupt.*deleted"):
        data.load_source(mdc_source("corrupt"))
    assert not (isolated_cache / "mdc" / "corrupt.tar.gz").exists()  # the next run downloads afresh
    with pytest.raises(DataSourceError, match="holds Common Voice locale|no 'de' folder"):
        data.load_source(SourceConfig(kind="mdc", language="de", dataset_id="cv-mr"))


def test_mdc_offline(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MDC_API_URL", f"http://127.0.0.1:{port}/api")
    monkeypatch.setenv("MDC_API_KEY", "k")
    start = time.perf_counter()
    with pytest.raises(OfflineError, match="Cannot reach the Mozilla Data Collective.*demo source"):
        data.load_source(mdc_source())
    assert time.perf_counter() - start < 5


def test_zip_archive_is_extracted(tmp_path):
    import zipfile

    make_release(tmp_path / "src", fmt="wav", missing=())
    archive = tmp_path / "dl" / "release.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        for p in (tmp_path / "src").rglob("*"):
            zf.write(p, p.relative_to(tmp_path / "src"))
    root = data.extract_archive(archive)
    assert root == tmp_path / "dl" / "release"
    assert len(data.read_cv_folder(root, "mr")["train"]) == 4


# ---------------------------------------------------------------------------------------------- hub
def write_parquet_folder(folder: Path, audio_col="speech", text_col="transcription"):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    for split, texts in (("train", SENTENCES["train"]), ("test", SENTENCES["test"])):
        blobs = []
        for i, _ in enumerate(texts):
            buf = io.BytesIO()
            sf.write(buf, tone(0.5 + 0.25 * i, 16000), 16000, format="FLAC")
            blobs.append({"bytes": buf.getvalue(), "path": f"{split}_{i}.flac"})
        table = pa.table({audio_col: blobs, text_col: texts, "speaker": ["s"] * len(texts)})
        pq.write_table(table, folder / f"{split}-00000-of-00001.parquet")


def test_hub_local_parquet_folder(tmp_path):
    write_parquet_folder(tmp_path / "pq")
    src = SourceConfig(kind="hub", language="mr", dataset_id=str(tmp_path / "pq"), audio_column="speech",
                       text_column="transcription")
    dsd = data.load_source(src)
    assert dsd["train"].column_names == list(data.COLUMNS)
    assert dsd["train"].features["audio"].decode is False
    row = dsd["test"][1]
    assert row["sentence"] == SENTENCES["test"][1] and row["locale"] == "mr" and row["audio"]["bytes"]
    assert data.summarize(dsd)["train"]["hours"] == pytest.approx((0.5 + 0.75 + 1.0 + 1.25) / 3600, abs=1e-4)
    sample = data.sample_rows(dsd, "train", 1)[0]
    assert Path(sample["path"]).is_file()  # bytes were written out so a UI can play them
    with pytest.raises(DataSourceError, match="no column.*'sentence'.*speech, transcription"):
        data.load_source(SourceConfig(kind="hub", language="mr", dataset_id=str(tmp_path / "pq"), audio_column="speech"))


def test_hub_local_audiofolder(tmp_path):
    folder = tmp_path / "af"
    for split, texts in (("train", SENTENCES["train"]), ("test", SENTENCES["test"])):
        (folder / split).mkdir(parents=True)
        with open(folder / split / "metadata.csv", "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file_name", "text"])
            for i, text in enumerate(texts):
                sf.write(folder / split / f"{i}.wav", tone(0.3, 16000), 16000)
                writer.writerow([f"{i}.wav", text])
    dsd = data.load_source(SourceConfig(kind="hub", language="mr", dataset_id=str(folder), text_column="text"))
    assert len(dsd["train"]) == 4 and dsd["train"][1]["sentence"] == SENTENCES["train"][1]


def test_hub_offline_and_script_repos(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(OfflineError, match="Cannot reach the Hugging Face hub.*demo source.*cv-folder"):
        data.load_source(SourceConfig(kind="hub", language="mr", dataset_id="someone/not-cached-anywhere"))
    assert time.perf_counter() - start < 5
    # not flagged offline, but the hub does not answer: a quick TCP probe fails fast instead of datasets' retries
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.perf_counter()
    with pytest.raises(OfflineError, match="Cannot reach the Hugging Face hub"):
        data.load_source(SourceConfig(kind="hub", language="mr", dataset_id="someone/repo"))
    assert time.perf_counter() - start < 5
    script = tmp_path / "scripted"
    script.mkdir()
    (script / "scripted.py").write_text("import datasets\n")
    with pytest.raises(DataSourceError, match="script-based dataset"):
        data.load_source(SourceConfig(kind="hub", language="mr", dataset_id=str(script)))


def test_hub_error_messages_for_missing_and_gated_repos():
    from datasets.exceptions import DatasetNotFoundError

    # the exact messages datasets 5 raises (load.py), which need the real hub to provoke
    gated = data._hub_error(DatasetNotFoundError("Dataset 'org/x' is a gated dataset on the Hub. Visit ..."), "org/x")
    assert isinstance(gated, DataSourceError) and "accept its terms" in str(gated) and "HF_TOKEN" in str(gated)
    missing = data._hub_error(DatasetNotFoundError("Dataset 'org/y' doesn't exist on the Hub or cannot be accessed."), "org/y")
    assert "No dataset 'org/y'" in str(missing)
    offline = data._hub_error(ConnectionError("Couldn't reach 'org/z' on the Hub (LocalEntryNotFoundError)"), "org/z")
    assert isinstance(offline, OfflineError) and "demo source" in str(offline)


# ---------------------------------------------------------------------------------------------- prepare + collator
def test_prepare_labels_features_drops_and_cache(tmp_path, isolated_cache, processor):
    texts = {"train": ["नमस्कार जग", "आज पाऊस पडला " * 8, "मी घरी जातो", "लांब"], "test": ["पाणी"]}
    folder = make_release(tmp_path, fmt="wav", missing=(), sentences=texts)
    sf.write(folder / "clips" / "common_voice_mr_4.wav", tone(31, 16000), 16000)  # > 30 s
    ds = data.read_cv_folder(folder, "mr", splits=("train",))["train"]
    prepared = data.prepare(ds, processor, "mr", max_label_tokens=40)
    assert (prepared.dropped_long_audio, prepared.dropped_long_labels) == (1, 1)
    out = prepared.dataset
    assert len(out) == 2 and not prepared.cached
    tok = processor.tokenizer
    labels = out[0]["labels"]
    assert tok.convert_ids_to_tokens(labels[:4]) == ["<|startoftranscript|>", "<|mr|>", "<|transcribe|>", "<|notimestamps|>"]
    assert labels[-1] == tok.eos_token_id
    assert tok.decode(labels, skip_special_tokens=True) == "नमस्कार जग"
    feats = np.asarray(out[0]["input_features"])
    assert feats.shape == (processor.feature_extractor.feature_size, 3000)
    assert np.isfinite(feats).all() and feats.std() > 0
    again = data.prepare(ds, processor, "mr", max_label_tokens=40)
    assert again.cached and (again.dropped_long_audio, again.dropped_long_labels) == (1, 1)
    assert np.allclose(np.asarray(again.dataset[1]["input_features"]), np.asarray(out[1]["input_features"]))
    # a different language is a different cache entry with different prefix tokens
    hindi = data.prepare(ds, processor, "hi", max_label_tokens=40)
    assert not hindi.cached and tok.convert_ids_to_tokens(hindi.dataset[0]["labels"][1]) == "<|hi|>"
    with pytest.raises(LanguageError, match="large-v3"):
        data.prepare(ds, processor, "yue")
    # what train.py does: a shuffled subset in, numpy-formatted rows through the collator
    subset = ds.shuffle(seed=1).select(range(3))
    rows = data.prepare(subset, processor, "mr", max_label_tokens=40).dataset.with_format("numpy")
    sot = tok.convert_tokens_to_ids("<|startoftranscript|>")
    batch = data.DataCollatorSpeechSeq2SeqWithPadding(processor, sot)([rows[i] for i in range(len(rows))])
    assert batch["input_features"].shape[1:] == (processor.feature_extractor.feature_size, 3000)
    assert tok.convert_ids_to_tokens(int(batch["labels"][0, 0])) == "<|mr|>"  # start token stripped


def test_collator_pads_masks_and_strips_start_token(processor):
    sot = processor.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    feats = np.zeros((processor.feature_extractor.feature_size, 3000), dtype=np.float32)
    collator = data.DataCollatorSpeechSeq2SeqWithPadding(processor, decoder_start_token_id=sot)
    batch = collator([{"input_features": feats, "labels": [sot, 5, 6, 7]}, {"input_features": feats, "labels": [sot, 9]}])
    assert tuple(batch["input_features"].shape) == (2, feats.shape[0], 3000)
    assert batch["labels"].tolist() == [[5, 6, 7], [9, -100, -100]]
    # not every row starts with it: nothing is stripped
    batch = collator([{"input_features": feats, "labels": [sot, 5]}, {"input_features": feats, "labels": [8, 9, 10]}])
    assert batch["labels"].tolist() == [[sot, 5, -100], [8, 9, 10]]


# ---------------------------------------------------------------------------------------------- demo + CLI
def test_demo_source_is_synthetic(monkeypatch):
    if SHARED_CACHE:  # the demo corpus takes ~30 s to synthesise: build it once, in the cache other tests share
        monkeypatch.setenv("WHISPER_STUDIO_CACHE", SHARED_CACHE)
    report = data.LoadReport()
    dsd = data.load_source(SourceConfig(kind="demo", language="en"), report=report)
    assert report.synthetic and len(dsd["train"]) > 0 and len(dsd["test"]) > 0
    assert not set(dsd["train"]["sentence"]) & set(dsd["test"]["sentence"])
    assert data.summarize(dsd)["train"]["hours"] > 0
    assert Path(dsd["train"][0]["audio"]["path"]).is_file()


def test_cli_prints_clips_and_hours(tmp_path, capsys):
    from whisper_studio.cli import main

    make_release(tmp_path / "rel", fmt="wav")
    assert main(["data", "--source", "cv-folder", "--path", str(tmp_path / "rel"), "--language", "mr", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["splits"]["train"]["clips"] == 4 and out["missing_clips"] == {"train": 1} and out["synthetic"] is False
    assert main(["data", "--source", "cv-folder", "--path", str(tmp_path / "rel"), "--language", "mr"]) == 0
    text = capsys.readouterr().out
    assert "Marathi" in text and "train" in text and "clips" in text
    assert "train / test: disjoint" in text
    assert main(["data", "--source", "cv-folder", "--path", str(tmp_path / "nowhere"), "--language", "mr"]) == 2
    assert "Folder not found" in capsys.readouterr().err


def test_demo_cli_lists_disjoint_train_and_test(capsys):
    from whisper_studio.cli import main

    assert main(["data", "--source", "demo", "--language", "mr", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["synthetic"] is True and out["splits"]["train"]["clips"] > out["splits"]["test"]["clips"] > 0
    assert out["shared_sentences"] == {"train/test": 0}


def test_shared_sentences_counts_overlap(tmp_path):
    from datasets import Dataset, DatasetDict

    dsd = DatasetDict(train=Dataset.from_dict({"sentence": ["a b", "c d", "e f"]}),
                      test=Dataset.from_dict({"sentence": ["c d ", "g h"]}))
    assert data.shared_sentences(dsd) == {("train", "test"): 1}



# ---------------------------------------------------------------------------------------------- hardening (13.1, 13.4, 13.5)
def write_audiofolder(folder: Path, names_and_texts) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / "ok.wav", tone(0.4, 16000), 16000)
    with open(folder / "metadata.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "sentence"])
        writer.writerows(names_and_texts)
    return folder


@pytest.mark.parametrize("name", ["/etc/passwd", "/proc/self/environ", "../outside.wav", "sub/../../outside.wav",
                                  "link.wav"])
def test_metadata_paths_outside_the_folder_are_refused(tmp_path, name):
    """Issue 13.1's exploit: an upload whose metadata.csv lists server files, loaded as a local hub dataset."""
    sf.write(tmp_path / "outside.wav", tone(0.4, 16000), 16000)
    folder = write_audiofolder(tmp_path / "upload", [["ok.wav", "fine"], [name, "stolen"]])
    (folder / "link.wav").symlink_to(tmp_path / "outside.wav")  # a symlink out of the folder counts as outside
    with pytest.raises(DataSourceError, match=r"metadata\.csv line 3.*refusing to read it") as err:
        data.load_source(SourceConfig(kind="hub", language="en", dataset_id=str(folder)), splits=("train",))
    assert name in str(err.value)
    with pytest.raises(DataSourceError, match="outside|absolute"):
        data.check_inside(folder, name)
    assert data.check_inside(folder, "ok.wav") == (folder / "ok.wav").resolve()


def test_parquet_audio_paths_outside_the_folder_are_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "pq"
    folder.mkdir()
    for split in ("train", "test"):
        table = pa.table({"audio": [{"bytes": None, "path": "/etc/passwd"}], "sentence": ["x"]})
        pq.write_table(table, folder / f"{split}-00000-of-00001.parquet")
    with pytest.raises(DataSourceError, match=r"row 0.*'/etc/passwd'.*outside"):
        data.load_source(SourceConfig(kind="hub", language="en", dataset_id=str(folder)), splits=("train",))


def test_sample_rows_returns_only_files_that_decode_as_audio(tmp_path):
    folder = write_audiofolder(tmp_path / "upload", [["ok.wav", "fine"], ["fake.wav", "not audio"]])
    (folder / "fake.wav").write_text("root:x:0:0:root:/root:/bin/bash\n")
    dsd = data.load_source(SourceConfig(kind="hub", language="en", dataset_id=str(folder)), splits=("train",))
    assert len(dsd["train"]) == 2
    rows = data.sample_rows(dsd, "train", 5)
    assert [Path(r["path"]).name for r in rows] == ["ok.wav"]


def test_non_utf8_tsv_names_the_file_and_line(tmp_path):
    folder = make_release(tmp_path, fmt="wav", missing=())
    tsv = folder / "train.tsv"
    lines = tsv.read_bytes().split(b"\n")
    lines[2] = lines[2].replace("तो".encode(), "caf\xe9".encode("latin-1"))  # a latin-1 byte on line 3
    tsv.write_bytes(b"\n".join(lines))
    with pytest.raises(DataSourceError, match=r"train\.tsv is not UTF-8 text \(line 3, byte 0xe9.*Save it as UTF-8"):
        data.read_cv_folder(folder, "mr")


def test_empty_sentences_skipped_and_counted(tmp_path):
    texts = {"train": ["नमस्कार जग", "  ", "मी घरी जातो"], "test": ["पाणी"]}
    folder = make_release(tmp_path, fmt="wav", missing=(), sentences=texts)
    report = data.LoadReport()
    dsd = data.read_cv_folder(folder, "mr", report=report)
    assert len(dsd["train"]) == 2 and report.skipped_empty == {"train": 1}
    assert report.skipped_lines() == ["train: 1 row(s) skipped (empty sentences)"]


def test_prepare_counts_corrupt_clips_and_empty_sentences(tmp_path, processor):
    import datasets

    from whisper_studio.sources.base import make_dataset

    folder = make_release(tmp_path, fmt="mp3", missing=())
    clips = sorted((folder / "clips").iterdir())
    clips[1].write_bytes(b"ID3" + os.urandom(2000))  # a corrupt mp3
    rows = {"audio": [str(c) for c in clips[:4]], "sentence": ["एक", "दोन", "", "चार"], "locale": ["mr"] * 4,
            "split": ["train"] * 4, "id": [c.stem for c in clips[:4]]}
    prepared = data.prepare(make_dataset(rows), processor, "mr")
    assert isinstance(prepared.dataset, datasets.Dataset) and len(prepared.dataset) == 2
    assert (prepared.skipped_corrupt, prepared.skipped_empty) == (1, 1)
    assert "1 unreadable" in prepared.skipped_summary() and "1 with an empty sentence" in prepared.skipped_summary()


def test_prepare_works_when_the_features_cache_cannot_be_written(tmp_path, isolated_cache, processor, caplog):
    folder = make_release(tmp_path, fmt="wav", missing=())
    ds = data.read_cv_folder(folder, "mr", splits=("test",))["test"]
    isolated_cache.mkdir(parents=True, exist_ok=True)
    (isolated_cache / "features").write_text("not a folder")  # mkdir fails there, as on a read-only cache
    prepared = data.prepare(ds, processor, "mr")
    assert len(prepared.dataset) == 2 and not prepared.cached
    assert prepared.notes and "cannot be written" in prepared.notes[0]


# ---------------------------------------------------------------------------------------------- mdc (10.6-10.8)
def test_mdc_extracted_folder_is_reused_without_key_or_network(mdc, monkeypatch):
    data.load_source(mdc_source(), api_key=mdc.api_key)
    assert "MDC_API_KEY" in os.environ and os.environ["MDC_API_KEY"] == mdc.api_key  # untouched, never set by us
    requests_before = len(mdc.requests)
    monkeypatch.delenv("MDC_API_KEY")
    monkeypatch.setenv("MDC_API_URL", "http://127.0.0.1:9/api")  # nothing listens: the network is gone
    report = data.LoadReport()
    dsd = data.load_source(mdc_source(), report=report)
    assert len(dsd["train"]) == 4 and any("cache" in n for n in report.notes)
    assert len(mdc.requests) == requests_before


def test_mdc_key_is_never_put_in_the_environment(mdc, monkeypatch):
    monkeypatch.delenv("MDC_API_KEY")
    seen = []
    import requests

    real = requests.request

    def spy(*args, **kwargs):
        seen.append(os.environ.get("MDC_API_KEY"))
        return real(*args, **kwargs)

    monkeypatch.setattr(requests, "request", spy)
    assert len(data.load_source(mdc_source(), api_key=mdc.api_key)["test"]) == 2
    assert seen and set(seen) == {None}
    from whisper_studio.sources import mdc as mdc_module

    assert not hasattr(mdc_module, "mdc_key_in_env")


def test_concurrent_extractions_of_one_archive_share_the_result(tmp_path):
    import threading

    make_release(tmp_path / "src", fmt="wav", missing=())
    (tmp_path / "src" / "padding.bin").write_bytes(np.random.default_rng(0).bytes(3_000_000))
    archive = tmp_path / "dl" / "release.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(tar_gz(tmp_path / "src"))
    results, errors = [], []
    barrier = threading.Barrier(3)

    def extract():
        barrier.wait()
        try:
            results.append(data.extract_archive(archive))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=extract) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and results == [tmp_path / "dl" / "release"] * 3
    assert len(data.read_cv_folder(results[0], "mr")["train"]) == 4
    assert sorted(p.name for p in archive.parent.iterdir()) == ["release", "release.tar.gz"]  # no temp left


def test_zip_slip_and_size_cap_are_refused(tmp_path):
    import zipfile

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(DataSourceError, match="unsafe path"):
        data.extract_archive(evil, into=tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\0" * 2_000_000)
    with pytest.raises(DataSourceError, match="over the 1 MB limit"):
        data.extract_archive(big, into=tmp_path / "out", max_bytes=1_000_000)
