"""Overlap and consensus: where an item stands given the answers it has (pure, no queries).

An item needs `overlap` answers from different reviewers. Each reviewer's
answer is their newest review of the item that is not a skip: a revision
supersedes what it revises, and a withdrawal (undo) leaves that reviewer with
no answer. Once `overlap` reviewers have answered:

- all gave the same label → the item is done, and that label is its gold label;
- they differ, or any said "uncertain" → the item waits for an adjudicator.

Fewer answers → the item stays open. An adjudicator's decision settles the item
whatever the answers were (annotations/adjudication.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from annotations.models import Item, Review


@dataclass(frozen=True)
class AnswerRow:
    """One review as consensus needs it, in the order the reviews were made."""

    reviewer_id: int
    decision: str
    label_id: int | None


class _Answer(Protocol):
    """A Review row or an AnswerRow: what consensus reads of a review."""

    reviewer_id: int
    decision: str
    label_id: int | None


A = TypeVar("A", bound=_Answer)


@dataclass(frozen=True)
class Outcome:
    state: str  # an Item.QueueState
    answers_count: int
    label_id: int | None  # the derived gold label when state is done


def current_answers(reviews: Iterable[A]) -> dict[int, A]:
    """Each reviewer's answer that counts now, by reviewer id (reviews oldest first)."""
    answers: dict[int, A] = {}
    for review in reviews:
        if review.decision == Review.Decision.SKIP or review.decision == Review.Decision.ADJUDICATE:
            continue
        if review.decision == Review.Decision.WITHDRAWN:
            answers.pop(review.reviewer_id, None)
        else:
            answers[review.reviewer_id] = review
    return answers


def consensus(reviews: Iterable[_Answer], *, overlap: int) -> Outcome:
    """Where an item stands after these reviews, for a dataset that wants `overlap` answers per item."""
    answers = list(current_answers(reviews).values())
    if len(answers) < overlap:
        return Outcome(Item.QueueState.OPEN, len(answers), None)
    labels = {answer.label_id for answer in answers}
    uncertain = any(answer.decision == Review.Decision.UNCERTAIN for answer in answers)
    if len(labels) == 1 and not uncertain:
        return Outcome(Item.QueueState.DONE, len(answers), labels.pop())
    return Outcome(Item.QueueState.ADJUDICATE, len(answers), None)
