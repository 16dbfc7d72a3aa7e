"""`python -m whisper_studio data` (placeholder during the refactor: forwards to the engine module)."""

from whisper_studio.data import register_cli  # noqa: F401
