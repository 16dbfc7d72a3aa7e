"""`python -m whisper_studio evaluate` (placeholder during the refactor: forwards to the engine module)."""

from whisper_studio.evaluation import register_cli  # noqa: F401
