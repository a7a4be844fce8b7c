"""User-facing errors: caught by the CLI and printed as one line without a traceback."""


class UserError(Exception):
    """Bad input from the user (a file, a field, a setting). The message says what to do."""


class DataError(UserError):
    """A corpus row or audio file that cannot be used."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ConfigError(UserError):
    """params.yaml (or a config file) that does not match the schema."""
