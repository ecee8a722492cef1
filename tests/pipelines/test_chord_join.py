"""Chords are joined by the members' stored states, so a member counted twice or never
(its worker lost around its result) cannot leave the chord hanging
(apps/jobs/worker/backend.py: on_chord_part_return)."""

import uuid

import pytest
from celery import group
from celery.app.task import Context
from django_celery_results.models import ChordCounter, TaskResult

from apps.demo.tasks import add
from project import celery_app
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def make_chord(members: int):
    """A chord's counter as Celery's apply_chord records it, and its body's signature."""
    header = group(add.si(i, i).set(task_id=str(uuid.uuid4())) for i in range(members))
    header_result = header.freeze()
    body = add.si(100, 1).set(task_id=str(uuid.uuid4()))
    celery_app.backend.apply_chord(header_result, body)
    return header_result, body


def member_returns(header_result, index: int, body) -> None:
    """What the worker's backend does when member `index` ends: store, then count."""
    member = header_result.results[index]
    request = Context(id=member.id, group=header_result.id, chord=dict(body))
    celery_app.backend.store_result(member.id, index * 2, "SUCCESS")
    celery_app.backend.on_chord_part_return(request, "SUCCESS", index * 2)


def body_ran(body) -> bool:
    return TaskResult.objects.filter(task_id=body.id, status="SUCCESS").exists()


def test_a_member_counted_twice_does_not_leave_the_chord_hanging(celery_worker):
    header_result, body = make_chord(3)
    member_returns(header_result, 0, body)
    member_returns(header_result, 0, body)  # delivered again after its worker was lost
    member_returns(header_result, 1, body)
    assert not body_ran(body)  # member 2 has not ended: the body waits
    member_returns(header_result, 2, body)
    wait_for(lambda: body_ran(body))
    assert not ChordCounter.objects.filter(group_id=header_result.id).exists()


def test_a_member_never_counted_is_counted_when_its_duplicate_is_skipped(celery_worker):
    header_result, body = make_chord(2)
    member_returns(header_result, 0, body)
    # Member 1's worker stored its result and was lost before counting it; the message
    # came back, and the duplicate was skipped (its run had finished): it looks again.
    member = header_result.results[1]
    celery_app.backend.store_result(member.id, 2, "SUCCESS")
    celery_app.backend.recheck_chord(Context(id=member.id, group=header_result.id,
                                             chord=dict(body)))  # fmt: skip
    wait_for(lambda: body_ran(body))
