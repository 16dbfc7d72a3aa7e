"""The app on a simulated public Space, attacked through its HTTP API (gradio_client and plain requests).

One app server for the module, started as the browser tests start theirs (own process group, parent-death
signal), with SPACE_ID and an admin password set and every secret the owner might keep (admin password, MDC key,
HF token) set to a marker value. Then:
- only the served folder is served: a cache file, a run's config.json, its train.log and /etc/passwd are
  refused on `/gradio_api/file=`, a served clip is not;
- every endpoint that trains, stops, resumes, pushes, builds files or reads a server folder refuses a call
  without the password (and a local path even with it);
- the metadata.csv exploit (a dataset folder whose metadata names /etc/passwd and /proc/self/environ, loaded as
  a local "hub" dataset) serves nothing;
- no marker value ever comes back: in the page, its config, the API description, any response, or the app log.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from helpers import make_run

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
from studio_browser import ARTIFACTS, AppServer  # noqa: E402

from whisper_studio.hosting import ADMIN_PASSWORD_ENV  # noqa: E402

# Distinct, greppable values; none of them may ever come back from the server.
MARKERS = {
    ADMIN_PASSWORD_ENV: "admin-marker-7Qx93vLk",
    "MDC_API_KEY": "mdc-marker-Zp41sWq8",
    "HF_TOKEN": "hf_markerTok3nR7u2Yd",
    "HUGGING_FACE_HUB_TOKEN": "hf_markerTok3nR7u2Yd",
}
REFUSED = (403, 404)
EXAMPLE_WAV = Path(__file__).resolve().parents[1] / "assets" / "examples" / "en_1.wav"


class Space:
    """The running app and what the tests need to know about it."""

    def __init__(self, server: AppServer, runs: Path, cache: Path, log: Path):
        self.server, self.runs, self.cache, self.log = server, runs, cache, log
        self.url = server.url
        self.responses: list[str] = []  # every response body seen, grepped for the markers at the end
        from gradio_client import Client

        self.client = Client(self.url, verbose=False, download_files=False)
        self.config = httpx.get(self.url + "config", timeout=10).json()
        self.components = {c["id"]: c for c in self.config["components"]}

    def get(self, path: str) -> httpx.Response:
        r = httpx.get(self.url + path, timeout=10)
        self.responses.append(r.text)
        return r

    def file(self, path: str | Path) -> int:
        """The status of `/gradio_api/file=<path>`."""
        return self.get("gradio_api/file=" + str(path)).status_code

    def endpoint(self, elem_id: str, trigger: str = "click") -> dict | None:
        """The event a component with `elem_id` fires (its api_name and inputs), from the app's config."""
        for dep in self.config["dependencies"]:
            for target, event in dep["targets"]:
                if event == trigger and self.components.get(target, {}).get("props", {}).get("elem_id") == elem_id:
                    return dep
        return None

    def call(self, elem_id: str, **values):
        """Call the event behind `elem_id` as an anonymous client would: every input at its page default but
        those given by elem_id (dashes as underscores). Returns the result, or the AppError raised."""
        from gradio_client.exceptions import AppError

        dep = self.endpoint(elem_id)
        assert dep is not None, f"no click event on #{elem_id}"
        args = []
        for cid in dep["inputs"]:
            comp = self.components[cid]
            if comp["type"] == "state":  # the client keeps State itself; it is not a parameter
                continue
            key = (comp["props"].get("elem_id") or "").replace("-", "_")
            args.append(values.pop(key) if key in values else comp["props"].get("value"))
        assert not values, f"#{elem_id} has no inputs {sorted(values)}"
        try:
            result = self.client.predict(*args, api_name="/" + dep["api_name"])
        except AppError as exc:
            self.responses.append(str(exc))
            return exc
        self.responses.append(json.dumps(result, default=str))
        return result


def refused(result, *words: str) -> str:
    from gradio_client.exceptions import AppError

    assert isinstance(result, AppError), f"not refused: {result!r}"[:500]
    text = str(result)
    assert any(w.lower() in text.lower() for w in words), text
    return text


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    root = tmp_path_factory.mktemp("space")
    runs, cache = root / "runs", root / "cache"
    # 1. What a Space's disk holds: a converted model in the cache, a finished run with an adapter, a stopped run.
    (cache / "models" / "bundled-whisper-base").mkdir(parents=True)
    (cache / "models" / "bundled-whisper-base" / "config.json").write_text('{"model_type": "whisper"}')
    make_run(runs, "finished-run", state="finished", adapter=True)
    make_run(runs, "stopped-run", state="stopped", adapter=False)
    # 2. The app on a simulated public Space, every secret a marker.
    log = ARTIFACTS / "security-app-server.log"
    server = AppServer(env={
        "SPACE_ID": "owner/whisper-studio", "SYSTEM": "spaces", **MARKERS,
        "WHISPER_STUDIO_RUNS": str(runs), "WHISPER_STUDIO_CACHE": str(cache),
    })
    server.start(log)
    try:
        yield Space(server, runs, cache, log)
    finally:
        server.stop()


def test_only_the_served_folder_is_served(space, monkeypatch):
    from whisper_studio.ui import common

    # The cache, the runs folder and the system are not served, whatever the path spelling.
    for path in (space.cache / "models" / "bundled-whisper-base" / "config.json",
                 space.runs / "finished-run" / "config.json", space.runs / "finished-run" / "train.log",
                 space.runs / "finished-run" / "adapter" / "adapter_config.json",
                 Path("/etc/passwd"), "/proc/self/environ",
                 f"{common.SERVED_FOLDER}/../../etc/passwd"):
        assert space.file(path) in REFUSED, path
    # A clip the UI shows (copied by common.servable into the served folder of the app's cache) is.
    monkeypatch.setenv("WHISPER_STUDIO_CACHE", str(space.cache))
    served = common.servable(EXAMPLE_WAV)
    assert Path(served).parent == space.cache.resolve() / common.SERVED_FOLDER
    r = space.get("gradio_api/file=" + served)
    assert r.status_code == 200 and r.content == EXAMPLE_WAV.read_bytes()
    # A link planted in the served folder does not reach past it either.
    link = Path(served).parent / "planted.wav"
    link.symlink_to("/etc/passwd")
    try:
        assert space.file(link) in REFUSED
    finally:
        link.unlink()


def test_every_action_needs_the_admin_password(space):
    # The run dropdowns are filled on page load; a client session fills them the same way first.
    space.call("run-refresh")
    wrong = {"admin_password": "not-the-password"}
    for values in ({}, wrong):
        refused(space.call("start-btn", **values), "admin password")
        refused(space.call("stop-btn", **values), "admin password")
        refused(space.call("push-btn", run_select="finished-run", push_repo="me/x", push_token="hf_visitor",
                           **{"eval_admin_password": values.get("admin_password", "")}), "admin password")
    if space.endpoint("download-merged-btn") is not None:  # builds a merged model on the owner's disk
        refused(space.call("download-merged-btn", run_select="finished-run", eval_admin_password=""),
                "admin password")
    # Saving a recording writes to the owner's disk.
    refused(space.call("record-save", record_sentence="a sentence", record_admin_password=""), "admin password")
    resume = space.endpoint("resume-btn")
    if resume is not None:
        refused(space.call("resume-btn"), "admin password")
    # No run was started, stopped or pushed.
    names = sorted(p.name for p in space.runs.iterdir() if not p.name.startswith("."))
    assert names == ["finished-run", "stopped-run"]
    assert json.loads((space.runs / "stopped-run" / "status.json").read_text())["state"] == "stopped"


def test_a_push_with_the_password_still_needs_a_typed_token(space):
    """The Space's HF_TOKEN is the owner's: a UI push never falls back to it."""
    space.call("run-refresh")
    refused(space.call("push-btn", run_select="finished-run", push_repo="me/x", push_token="",
                       eval_admin_password=MARKERS[ADMIN_PASSWORD_ENV]), "token field")


def test_local_paths_are_refused_even_with_the_password(space, tmp_path):
    folder = tmp_path / "cv"
    (folder / "clips").mkdir(parents=True)
    for password in ("", MARKERS[ADMIN_PASSWORD_ENV]):
        for values in ({"source": "cv-folder", "cv_folder": str(folder)},
                       {"source": "hub", "hub_id": str(folder)},
                       {"source": "hub", "hub_id": "../../etc"}):
            out = space.call("load-btn", data_admin_password=password, **values)
            assert not isinstance(out, Exception), out  # the Data tab answers in its status line
            assert "does not read" in out[0] and not out[1]["data"], out[:2]
        # Training on a server folder is refused the same way, with or without the password.
        refused(space.call("start-btn", source="cv-folder", cv_folder=str(folder), admin_password=password),
                "does not read", "admin password")
    assert sorted(p.name for p in space.runs.iterdir() if not p.name.startswith(".")) == ["finished-run", "stopped-run"]


def test_metadata_csv_exploit_serves_nothing(space):
    """A visitor uploads a metadata.csv naming /etc/passwd and /proc/self/environ, then loads its upload folder
    as a local "hub" dataset: refused, and no file of the server comes back."""
    csv = "file_name,sentence\n/etc/passwd,a\n/proc/self/environ,b\n../../../../etc/hostname,c\n"
    r = httpx.post(space.url + "gradio_api/upload", files={"files": ("metadata.csv", csv.encode(), "text/csv")},
                   timeout=10)
    assert r.status_code == 200, r.text
    uploaded = Path(r.json()[0])
    out = space.call("load-btn", source="hub", hub_id=str(uploaded.parent))
    assert "does not read" in out[0] and not out[1]["data"]
    assert not any(player.get("value") for player in out[2:6]), out[2:6]
    passwd = Path("/etc/passwd").read_bytes()
    assert not [p for p in (space.cache / "served").glob("*") if p.read_bytes() == passwd]


def test_no_secret_in_any_page_response_or_log(space):
    """Runs last in this module: every response the tests above collected, plus the page, its config, the API
    description and the app log, are grepped for the marker values."""
    for path in ("", "config", "gradio_api/info", "gradio_api/openapi.json", "info"):
        space.get(path)
    space.responses.append(json.dumps(space.client.view_api(print_info=False, return_format="dict")))
    # Open events a visitor may call: the run listings and a saved evaluation.
    space.call("run-refresh")
    space.call("adapter-refresh")
    bodies = "\n".join(space.responses)
    assert len(space.responses) > 10
    log = space.log.read_text(errors="replace")
    for name, value in MARKERS.items():
        assert value not in bodies, f"{name} leaked in a response"
        assert value not in log, f"{name} leaked in the app log"
