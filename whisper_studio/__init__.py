"""Whisper Studio: fine-tune Whisper on a Common Voice language with LoRA on an 8-bit base."""

__version__ = "0.1.0"
