"""`python -m whisper_studio train` (placeholder during the refactor: forwards to the engine module)."""

from whisper_studio.train import register_cli  # noqa: F401
