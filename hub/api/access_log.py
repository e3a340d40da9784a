"""The access log writes the path of each request, never its query string.

A search's criteria (NHS numbers, names, birth dates, postcodes) travel in the
query string, and uvicorn's access log (``uvicorn.access``, which gunicorn's
uvicorn workers log through too) writes the full request target. The
:class:`PathOnly` filter cuts every access line at the ``?``; the app installs
it on the access logger when it is built, in each worker process (whatever
server runs it: ``carehub serve`` with one worker or several, ``carehub demo``,
uvicorn or gunicorn directly).
"""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"


def without_query(target: str) -> str:
    """The request target up to (not including) its query string or fragment."""
    return target.split("?", 1)[0].split("#", 1)[0]


class PathOnly(logging.Filter):
    """Rewrites an access-log record so the request target it names carries no query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, its arguments cut at the ``?`` (uvicorn: client, method, target, version, status)."""
        if isinstance(record.args, tuple):
            record.args = tuple(without_query(a) if isinstance(a, str) and "?" in a else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: without_query(v) if isinstance(v, str) and "?" in v else v
                           for k, v in record.args.items()}
        if isinstance(record.msg, str) and "?" in record.msg and not record.args:
            record.msg = " ".join(without_query(word) if word.startswith(("/", '"')) else word
                                  for word in record.msg.split(" "))
        return True


def install(logger_name: str = ACCESS_LOGGER) -> None:
    """Put :class:`PathOnly` on the access logger (once)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, PathOnly) for f in logger.filters):
        logger.addFilter(PathOnly())


__all__ = ["ACCESS_LOGGER", "PathOnly", "install", "without_query"]
