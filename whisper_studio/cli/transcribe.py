"""`python -m whisper_studio transcribe` (placeholder during the refactor: forwards to the engine module)."""

from whisper_studio.transcribe import register_cli  # noqa: F401
