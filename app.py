"""Whisper Studio in the browser: `python app.py [--host H] [--port N]` (also the Hugging Face Spaces entry).

Starts fast on purpose: the tabs import no torch; models load on the first action that needs them.
"""

from __future__ import annotations

import argparse
import logging
import os

# Offline-first: no usage analytics or hub telemetry from the UI process.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from whisper_studio.ui import build_app, launch_kwargs  # noqa: E402

demo = build_app()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Whisper Studio web UI")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to listen on (0.0.0.0 to share on the network; default localhost)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    demo.queue(default_concurrency_limit=1).launch(server_name=args.host, server_port=args.port,
                                                  show_error=False, **launch_kwargs())


if __name__ == "__main__":
    main()
