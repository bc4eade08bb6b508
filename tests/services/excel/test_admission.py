"""Uploads are admitted before their bodies are read: one user's burst never holds every parser or queues in
front of another user's upload, and the waiting room is bounded."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from salesflow.errors import TooManyRequests
from salesflow.models.auth import Role, User
from salesflow.services.excel_import.admission import UploadAdmission


def user(name: str) -> User:
    return User(subject=name, username=name, roles=frozenset({Role.USER}))


def test_a_users_second_upload_waits_for_the_first_and_others_still_get_in() -> None:
    admission = UploadAdmission(parsers=2, waiting=0, per_user=1)
    with admission.admit(user("flooder")):
        with (
            pytest.raises(TooManyRequests, match="already have 1 upload") as refused,
            admission.admit(user("flooder")),
        ):
            pass
        assert refused.value.retry_after > 0
        with admission.admit(user("neighbour")):  # the second parser is theirs
            pass
    with admission.admit(user("flooder")):  # the first is done: the next is read
        pass


def test_the_waiting_room_is_bounded_and_places_come_back() -> None:
    admission = UploadAdmission(parsers=2, waiting=1, per_user=1)
    with ExitStack() as held:
        for name in ("a", "b", "c"):
            held.enter_context(admission.admit(user(name)))
        with pytest.raises(TooManyRequests, match="busy"), admission.admit(user("d")):
            pass
    with pytest.raises(ValueError), admission.admit(user("d")):  # a failed read gives its place back too
        raise ValueError("unreadable")
    with ExitStack() as held:
        for name in ("d", "e", "f"):
            held.enter_context(admission.admit(user(name)))
