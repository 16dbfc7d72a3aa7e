"""`python -m whisper_studio demo` (placeholder during the refactor: forwards to the engine module)."""

from whisper_studio.demo import register_cli  # noqa: F401
