"""Redaction: consistent, same-length pseudonyms for the personal data of a capture or an export.

By noun: pseudonyms (the maps and the same-length generators), text (SIP/SDP/other text rewriting),
packets (link/IP/L4 rewriting, checksums), redactor (Redactor, the public API over them), files (whole
captures, two passes), ladder (ladder models for images). Docs: docs/redact.md.
"""

from flowviz.export.redact.files import redact_capture, redact_file_in_place
from flowviz.export.redact.ladder import redact_ladder
from flowviz.export.redact.redactor import Redactor

__all__ = ["Redactor", "redact_capture", "redact_file_in_place", "redact_ladder"]
