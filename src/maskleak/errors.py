"""The one exception type users see for bad input (files, config values, checksums)."""


class InputError(ValueError):
    """Bad input. The message always names the offending file or config key."""
