"""Redact a log line before it leaves the stream as an alert's sample.

An alert lands in Slack, in Alertmanager's memory and in on-call's history: a line
copied there must carry no card number, no credential and no personal contact. What is
masked: digit runs of card length (13-19 digits, spaces or dashes allowed between
groups), e-mail addresses, bearer tokens / API keys / passwords in ``key=value`` or JSON
form, and IPv4 addresses. The line is also cut to a length a chat message can hold.
"""

from __future__ import annotations

import re

SAMPLE_MAX_CHARS = 500

_RULES: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [REDACTED]"),
    (re.compile(r"(?i)(\"?(?:password|passwd|secret|token|api[_-]?key|authorization)\"?\s*[:=]\s*\"?)"
                r"[^\"\s,}&]+"), r"\1[REDACTED]"),
    # Tried only where a run of address characters begins (the lookbehind): from every
    # position inside a run it took time quadratic in the run, hours for a 1 MiB body.
    (re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[EMAIL]"),
    (re.compile(r"(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])"), "[PAN]"),
    (re.compile(r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b"), "[IP]"),
)


def redact(line: str, max_chars: int = SAMPLE_MAX_CHARS) -> str:
    for pattern, replacement in _RULES:
        line = pattern.sub(replacement, line)
    return line if len(line) <= max_chars else line[: max_chars - 1] + "…"


def sample_line(line: bytes) -> str:
    """One log line as an alert shows it: severity, service and body, redacted.

    A record's body is what on-call reads (its ns timestamps and ids would only be
    noise, and a 19-digit timestamp looks like a card number to the mask); a line that
    is not a record is shown as it came, redacted.
    """
    import json

    text = line.decode("utf-8", "replace")
    try:
        record = json.loads(text)
        service = record.get("resource", {}).get("service.name", "?")
        text = f"{record.get('severity_text', '?')} {service}: {record['body']}"
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    return redact(text)
