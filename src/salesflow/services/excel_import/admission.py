"""Who may have an upload read now, decided before its body is read into memory.

Upload parsers are few (`IMPORT_PARSERS`) and a hostile file may hold one for its whole wall time. So each
user has at most `IMPORT_UPLOADS_PER_USER` uploads being read or waiting (fewer than the parsers: one user's
burst never holds every parser, and never queues in front of another user's upload), and no more than
`IMPORT_UPLOADS_WAITING` wait for a parser; past either, a 429 with Retry-After at once. Per API process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from salesflow.errors import TooManyRequests
from salesflow.models.auth import User

RETRY_AFTER_SECONDS = 5  # a well-formed file is read in about a second


class UploadAdmission:
    def __init__(self, *, parsers: int, waiting: int, per_user: int) -> None:
        self.capacity = parsers + waiting
        self.per_user = per_user
        self._admitted: Counter[str] = Counter()

    @contextmanager
    def admit(self, user: User) -> Iterator[None]:
        """Holds the user's place while their upload is read and parsed."""
        if self._admitted[user.subject] >= self.per_user:
            raise TooManyRequests(
                f"You already have {self.per_user} upload(s) being read; send the next once it is done",
                retry_after=RETRY_AFTER_SECONDS,
            )
        if self._admitted.total() >= self.capacity:
            raise TooManyRequests(
                "Every upload reader is busy; try again shortly", retry_after=RETRY_AFTER_SECONDS
            )
        self._admitted[user.subject] += 1
        try:
            yield
        finally:
            self._admitted[user.subject] -= 1
            if not self._admitted[user.subject]:
                del self._admitted[user.subject]
