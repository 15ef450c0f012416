"""The appliance's exceptions: one base, each also the matching built-in."""


class ApplianceError(Exception):
    """Base of every error the appliance raises on purpose."""


class ConfigError(ApplianceError, ValueError):
    """The configuration is invalid; the message names the key, the value and the fix."""


class InvalidStateError(ApplianceError, RuntimeError):
    """The operation is not allowed in the current state."""


class DeviceError(ApplianceError, OSError):
    """A device (capture bridge, encoder, GPIO) is missing or misbehaves."""


class SignallingError(ApplianceError, ValueError):
    """A signalling message is malformed or not acceptable now."""
