"""The appliance's exceptions: one base, each also the matching built-in."""


class ApplianceError(Exception):
    """Base of every error the appliance raises on purpose."""


class ConfigError(ApplianceError, ValueError):
    """The configuration is invalid; the message names the key, the value and the fix.

    ``key`` is the dotted key at fault ("" when the whole file is), ``line`` its line in the
    file when known."""

    def __init__(self, message: str, key: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.line = line

    def __str__(self) -> str:
        text = super().__str__()
        return f"line {self.line}: {text}" if self.line else text


class InvalidStateError(ApplianceError, RuntimeError):
    """The operation is not allowed in the current state."""


class DeviceError(ApplianceError, OSError):
    """A device (capture bridge, encoder, GPIO) is missing or misbehaves."""


class SignallingError(ApplianceError, ValueError):
    """A signalling message is malformed or not acceptable now."""
