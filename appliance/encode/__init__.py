"""H.264 encoders: software (PyAV libx264) and hardware (the Pi 4's V4L2 M2M encoder)."""
