"""shellspan-sink: receive shell-session traces over OTLP, store them in ClickHouse, query them."""

__version__ = "0.1.0"
