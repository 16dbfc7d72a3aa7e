"""`python -m whisper_studio push` (placeholder during the refactor: forwards to the engine module)."""

from whisper_studio.sharing import register_cli  # noqa: F401
