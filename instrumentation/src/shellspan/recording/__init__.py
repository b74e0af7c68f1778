"""Terminal recordings: what a session's terminal showed, as OTLP log records.

``shellspan record`` (``recorder``) runs a command in a pseudo-terminal, relays the bytes and
hands chunks of output to the per-user agent over a Unix socket (``channel``); the shells mark
where commands start and the prompt comes back with private OSC sequences (``marks``), which the
recorder removes and uses to attribute output; ``limits`` applies the per-session byte limits.
The agent (``shellspan.posix.intake``) redacts the text (``textredact``) and builds the records
(``records``). Python shells can also record what their statements print without a recorder
(``pycapture``). Nothing is imported here.
"""
