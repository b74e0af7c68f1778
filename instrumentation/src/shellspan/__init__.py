"""shellspan: record every interactive shell session as an OpenTelemetry trace."""

__version__ = "0.1.0"
