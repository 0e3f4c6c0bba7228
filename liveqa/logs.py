"""Log hygiene: link keys never reach a log line, and nobody can forge one with CR/LF.

uvicorn writes the request path with its query string (the moderator link's `?key=`), and
decodes %0d%0a in paths, so an attacker could otherwise start a fake log line of their own.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAM = re.compile(r"([?&](?:key|token|password|csrf_token)=)[^&\s\"']*", re.IGNORECASE)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "liveqa")


def clean(text: str) -> str:
    text = SECRET_PARAM.sub(r"\1[redacted]", text)
    return CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


# What a client's bad bytes make uvicorn log with a full traceback: one line is enough, and
# tracebacks on demand would let anyone flood the log.
CLIENT_FAULTS = ("Invalid UTF-8 sequence received from client",)


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith(CLIENT_FAULTS):
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        if isinstance(record.msg, str) and not record.args:
            record.msg = clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(clean(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Add the filter to uvicorn's and liveqa's loggers and to every handler they write to."""
    redact = Redact()
    targets: list[logging.Filterer] = [logging.getLogger()]
    for name in LOGGERS:
        logger = logging.getLogger(name)
        targets.append(logger)
        targets.extend(logger.handlers)
    targets.extend(logging.getLogger().handlers)
    for target in targets:
        if not any(isinstance(f, Redact) for f in target.filters):
            target.addFilter(redact)
