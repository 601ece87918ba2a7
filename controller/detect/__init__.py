"""Log detection: the pattern library, the matcher, multi-line records, redaction, discovery.

Pure: nothing here touches the engine. ``observe.logs`` feeds lines in; findings come out.

- ``library``: the pattern library (the service packs, ``packs/*.yaml``), its validation,
  user extensions.
- ``matcher``: every pattern at once over line-aligned buffers (Hyperscan), with a ``re``
  fallback for patterns Hyperscan refuses.
- ``records``: line cleaning (ANSI, NUL, invalid UTF-8, length) and multi-line records.
- ``redact``: secrets masked before a line is stored, reported or logged.
- ``fingerprint``: the same error with other numbers, ids or addresses is one issue.
- ``discovery``: unmatched error-looking lines mined into templates with drain3.
- ``detector``: records in, findings out.
"""
