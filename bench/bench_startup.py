"""Start-up: `python app.py --port N` to the first page served, and the first transcription after start.

    python bench/bench_startup.py
    python bench/bench_startup.py --quick

* first page: launch the app, poll GET / every 50 ms until it answers 200 (median of --repeats fresh launches);
* first transcription: launch the app, wait for the page, then call the Try tab's transcribe endpoint through
  gradio_client (bundled base, English, the 5 s example clip), timed from launch to transcript and as the request
  alone; once with the converted model already cached, once with an empty WHISPER_STUDIO_CACHE (the request
  then converts the bundled CTranslate2 weights first);
* for comparison, the CLI cold path: `python -m whisper_studio transcribe CLIP --model bundled/whisper-base --language en`.

Target: first page within 5 s.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import f  # noqa: E402

NAME = "startup"
MODEL = "bundled/whisper-base"
CLIP = common.REPO / "assets" / "examples" / "en_1.wav"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_page(url: str, proc: subprocess.Popen, timeout: float) -> float | None:
    """Seconds until GET url answers 200 (measured by the caller's clock); None if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200 and r.read(64):
                    return time.monotonic()
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.05)
    return None


class App:
    def __init__(self, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = open(log, "w")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port)], cwd=common.REPO, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def page(self, timeout: float) -> float | None:
        t = wait_page(self.url, self.proc, timeout)
        return None if t is None else t - self.t0

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def first_transcription(env: dict[str, str], log: Path, timeout: float) -> dict:
    from gradio_client import Client, handle_file

    app = App(env, log)
    try:
        page = app.page(timeout)
        if page is None:
            raise RuntimeError(f"the app never served its page; log:\n{log.read_text()[-2000:]}")
        client = Client(app.url, verbose=False)
        t_req = time.monotonic()
        out = client.predict(handle_file(str(CLIP)), "", MODEL, "en", api_name="/transcribe")
        t_done = time.monotonic()
        text = out[0] if isinstance(out, (list, tuple)) else out
        if isinstance(text, dict):
            text = text.get("value", text)
        return {"page_s": page, "request_s": t_done - t_req, "launch_to_transcript_s": t_done - app.t0,
                "text": str(text)[:200]}
    finally:
        app.close()


def run(args) -> dict:
    load0 = common.check_quiet()
    env = common.thread_env(args.threads)
    env.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from whisper_studio import models

    models.resolve(MODEL)  # the "cached" runs find the converted model in the default cache
    work = Path(tempfile.mkdtemp(prefix="bench_startup_"))
    res: dict = {"machine": common.machine_info(args.threads), "load_at_start": round(load0, 2),
                 "settings": {"repeats": args.repeats, "model": MODEL, "clip": CLIP.name, "threads": args.threads,
                              "quick": args.quick}}
    try:
        pages = []
        for i in range(args.repeats):
            app = App(env, work / f"page{i}.log")
            try:
                pages.append(app.page(args.timeout))
            finally:
                app.close()
            print(f"[startup] first page {pages[-1]}", flush=True)
        res["first_page_s"] = common.median(pages)
        res["first_page_all_s"] = pages

        print("[startup] first transcription, model cached", flush=True)
        res["transcribe_cached"] = first_transcription(env, work / "cached.log", args.timeout)
        print("[startup] first transcription, empty cache", flush=True)
        fresh = dict(env, WHISPER_STUDIO_CACHE=str(work / "fresh-cache"))
        res["transcribe_not_cached"] = first_transcription(fresh, work / "fresh.log", args.timeout)

        print("[startup] CLI cold transcription", flush=True)
        cli = [sys.executable, "-m", "whisper_studio", "transcribe", str(CLIP), "--model", MODEL, "--language", "en"]
        walls = []
        for _ in range(args.repeats):
            child = common.run_child(cli, env=env, cwd=common.REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            walls.append(child["wall_s"])
        res["cli_cold_transcribe_s"] = common.median(walls)
        res["cli_cold_transcribe_all_s"] = walls
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["load_at_end"] = round(common.load_average()[0], 2)
    res["targets"] = [common.target("python app.py to first page served", res["first_page_s"], 5.0, "<=", " s")]
    return res


def render(res: dict) -> str:
    c, n = res["transcribe_cached"], res["transcribe_not_cached"]
    lines = ["## Start-up", "",
             f"`python app.py --port N` in a fresh process; first page = GET / answered 200 (median of "
             f"{res['settings']['repeats']} launches). First transcription = the Try tab's endpoint through gradio_client "
             f"({res['settings']['model']}, English, `{res['settings']['clip']}`), with the converted model cached and with an "
             "empty WHISPER_STUDIO_CACHE (conversion from the bundled CTranslate2 files included).", "",
             "| measurement | seconds |", "| --- | --- |",
             f"| launch to first page | {f(res['first_page_s'])} |",
             f"| first transcription request, model cached | {f(c['request_s'])} |",
             f"| launch to first transcript, model cached | {f(c['launch_to_transcript_s'])} |",
             f"| first transcription request, empty cache (converts) | {f(n['request_s'])} |",
             f"| launch to first transcript, empty cache | {f(n['launch_to_transcript_s'])} |",
             f"| CLI `python -m whisper_studio transcribe` (cold process, cached model) | {f(res['cli_cold_transcribe_s'])} |",
             "", "### Targets", "", common.targets_table(res["targets"]), "", common.machine_line(res["machine"]),
             f"Load average at start {res['load_at_start']}, at end {res['load_at_end']}."]
    return "\n".join(lines)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=common.DEFAULT_THREADS)
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--no-docs", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = 1
    return args


def main(argv=None) -> int:
    return common.bench_main(NAME, parse, run, argv)


if __name__ == "__main__":
    sys.exit(main())
