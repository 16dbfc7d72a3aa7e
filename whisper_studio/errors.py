"""Errors a user can cause. Their message is shown as-is, in the UI and on the command line."""


class StudioError(Exception):
    """A problem the user can fix; the message says what happened and what to do."""


class ConfigError(StudioError):
    """A run configuration or a setting is invalid."""


class LanguageError(StudioError):
    """A language code or name is not one Whisper Studio supports."""


class AudioError(StudioError):
    """An audio file or recording cannot be used."""


class DataSourceError(StudioError):
    """A dataset source cannot be read."""


class ModelError(StudioError):
    """A model id or folder cannot be resolved or loaded."""


class OfflineError(StudioError):
    """Something needs the network, which is not reachable."""


class JobError(StudioError):
    """A training job cannot be started, stopped or found."""


class AccessError(StudioError):
    """An action this deployment does not allow to the caller (a missing or wrong admin password, a local path
    typed on a Space)."""
