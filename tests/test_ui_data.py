"""Fast tests of the Data tab: handlers called directly against real run folders (no browser)."""

from __future__ import annotations

import json
import os

import pytest

from whisper_studio.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


from helpers import no_progress as _no_progress


def test_source_config_from_page_values():
    from whisper_studio.ui.data_tab import source_config

    src = source_config({"language": "Marathi · मराठी (mr)", "kind": "demo"})
    assert (src.kind, src.language) == ("demo", "mr")
    src = source_config({"language": "sv-SE", "kind": "cv-folder", "folder": " /data/cv/sv-SE "})
    assert (src.kind, src.path, src.language) == ("cv-folder", "/data/cv/sv-SE", "sv-SE")
    src = source_config({"language": "en", "kind": "hub", "hub_id": "user/set", "hub_config": "", "hub_audio": "clip",
                         "hub_text": "text"})
    assert (src.dataset_id, src.audio_column, src.text_column) == ("user/set", "clip", "text")
    with pytest.raises(ConfigError, match="path"):
        source_config({"language": "en", "kind": "cv-folder", "folder": "  "})
    with pytest.raises(ConfigError, match="Data Collective"):
        source_config({"language": "en", "kind": "mdc", "mdc_id": ""})


def test_missing_folder_is_a_clear_message(tmp_path):
    from whisper_studio.ui.data_tab import load_data

    with pytest.warns(UserWarning, match="nope"):  # gr.Warning: the toast (a Python warning outside a request)
        out = load_data({"language": "en", "kind": "cv-folder", "mdc_key": "", "folder": str(tmp_path / "nope")},
                        progress=_no_progress)
    status, table, players = out[0], out[1], out[2:6]
    assert status.startswith("❌") and str(tmp_path / "nope") in status
    assert table == [] and not any(p["visible"] for p in players)
    assert "Traceback" not in status and "Error:" not in status


def test_local_common_voice_folder_loads_with_playable_samples(tmp_path, monkeypatch):
    """A Common Voice release folder outside the cache: counts per split, and sample clips copied to where the
    server may serve them (Gradio refuses to send files from arbitrary folders)."""
    import shutil

    from whisper_studio.ui.data_tab import load_data
    from whisper_studio.ui.try_tab import EXAMPLES_DIR

    cache = tmp_path / "cache"
    monkeypatch.setenv("WHISPER_STUDIO_CACHE", str(cache))
    locale_dir = tmp_path / "cv-corpus-1.0" / "en"
    (locale_dir / "clips").mkdir(parents=True)
    items = [i for i in json.loads((EXAMPLES_DIR / "examples.json").read_text()) if i["language"] == "en"]
    header = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\tsegment\n"
    rows = {"train": items[:-1], "test": items[-1:]}
    for split, chosen in rows.items():
        lines = [header]
        for item in chosen:
            shutil.copy(EXAMPLES_DIR / item["file"], locale_dir / "clips" / item["file"])
            lines.append(f"c1\t{item['file']}\t{item['text']}\t2\t0\t\t\t\ten\t\n")
        (locale_dir / f"{split}.tsv").write_text("".join(lines), encoding="utf-8")
    out = load_data({"language": "en", "kind": "cv-folder", "folder": str(locale_dir.parent)}, progress=_no_progress)
    status, table, players = out[0], out[1], out[2:6]
    assert {r[0]: r[1] for r in table} == {"train": len(rows["train"]), "test": 1}, (status, table)
    shown = [p["value"] for p in players if p["visible"]]
    assert len(shown) == len(rows["train"])
    for path in shown:
        assert path.startswith(str(cache)) and os.path.getsize(path) > 1000


def test_load_button_gets_gradio_progress():
    """The Load event takes the form's values positionally, then a gr.Progress that Gradio injects (it only
    looks at positional parameters), and hands load_data one dict of named values."""
    import gradio as gr
    from gradio.helpers import special_args

    from whisper_studio.ui import data_tab

    with gr.Blocks():
        tab = data_tab.build()
    keys = list(tab.form.components)
    assert keys[:3] == ["language", "kind", "mdc_key"] and {"mdc_id", "folder", "hub_id"} <= set(keys)
    seen = {}
    event = tab.form.event(lambda values, progress: seen.update(values=values, progress=progress), progress=True)
    args, progress_index, _, _ = special_args(event, [f"v-{k}" for k in keys])
    assert progress_index == len(keys) and isinstance(args[progress_index], gr.Progress)
    event(*args)
    assert seen["values"] == {k: f"v-{k}" for k in keys} and seen["progress"] is args[progress_index]


# --- Local paths and what is served (13.1) ----------------------------------------------------------------------
@pytest.fixture()
def public_space(monkeypatch):
    from whisper_studio import hosting

    monkeypatch.setenv("SPACE_ID", "owner/whisper-studio")
    monkeypatch.setenv(hosting.ADMIN_PASSWORD_ENV, "s3cret")
    return monkeypatch


def test_a_space_refuses_local_paths_typed_by_visitors(tmp_path, public_space):
    from whisper_studio.hosting import AccessError
    from whisper_studio.ui.data_tab import load_data, source_config

    (tmp_path / "cv" / "en").mkdir(parents=True)
    for values in ({"kind": "cv-folder", "folder": str(tmp_path / "cv")}, {"kind": "hub", "hub_id": str(tmp_path)},
                   {"kind": "hub", "hub_id": "../../etc"}, {"kind": "hub", "hub_id": "~/data"},
                   {"kind": "hub", "hub_id": "whisper_studio"}):  # a folder of the app's working directory
        with pytest.raises(AccessError, match="does not read"):
            source_config({"language": "en", **values})
        with pytest.warns(UserWarning, match="does not read"):  # the password does not unlock it
            out = load_data({"language": "en", **values, "admin_password": "s3cret"}, progress=_no_progress)
        assert out[0].startswith("❌") and out[1] == []
    # A hub id is still a hub id.
    assert source_config({"language": "en", "kind": "hub", "hub_id": "mozilla/cv-mr"}).dataset_id == "mozilla/cv-mr"


def test_on_a_space_the_recordings_folder_loads_with_the_admin_password_only(tmp_path, public_space):
    from whisper_studio.ui.data_tab import load_data, source_config
    from whisper_studio.ui.record_tab import recordings_root

    public_space.setenv("WHISPER_STUDIO_CACHE", str(tmp_path / "cache"))
    folder = recordings_root("en")
    values = {"language": "en", "kind": "cv-folder", "folder": str(folder)}
    assert source_config(values).path == str(folder)
    with pytest.warns(UserWarning, match="admin password"):
        out = load_data({**values, "admin_password": "wrong"}, progress=_no_progress)
    assert out[0].startswith("❌") and "admin password" in out[0]


def test_metadata_naming_server_files_serves_nothing(tmp_path, monkeypatch):
    """The 13.1 exploit off a Space: a local "hub" folder whose metadata.csv names /etc/passwd and
    /proc/self/environ. Whatever the readers do with it, no sample player gets a copy of those files."""
    from whisper_studio.ui.common import served_dir
    from whisper_studio.ui.data_tab import load_data

    monkeypatch.setenv("WHISPER_STUDIO_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "metadata.csv").write_text("file_name,sentence\n/etc/passwd,a\n/proc/self/environ,b\n"
                                         "../../../../../etc/hostname,c\n", encoding="utf-8")
    with pytest.warns(UserWarning):
        out = load_data({"language": "en", "kind": "hub", "hub_id": str(folder)}, progress=_no_progress)
    assert out[0].startswith("❌")
    assert not any(p.get("visible") for p in out[2:6])
    assert os.listdir(served_dir()) == []
