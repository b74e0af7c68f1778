"""Support shared by the test suite and the benchmarks: a real sink process on free ports, shells
driven through a pty, OTLP request builders and long-running helper processes."""
