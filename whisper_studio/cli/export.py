"""`python -m whisper_studio export` (placeholder during the refactor: forwards to the engine module)."""

from whisper_studio.export import register_cli  # noqa: F401
