"""Promotion requests as a state machine (issue 10, point 4): the one table of what may happen when.

    draft ──submit (requester, signed "authored")──▶ pending ──approve / reject (another model admin, signed)──▶ …
      │ edit (requester)                                │
      └──────────withdraw (requester, with a reason)────┴──▶ withdrawn

Rollbacks are promotion requests of kind "rollback" and go through the same
states. Everything not in TRANSITIONS is refused: the service raises
`TransitionRefused` (a ValidationError: 400, "this request is already …") or,
when the state would allow it but the person may not (someone else withdrawing,
the requester deciding), `TransitionForbidden` (a PermissionDenied: 403). Either
way the refused transaction rolls back and the refusal is written on its own as
`promotion.transition_refused` (`transition_refusal_record`), as a failed
signature is. The requester deciding their own request keeps its own, older
event name, `promotion.self_decision_refused`.

A draft does not block another request for the same version: the unique
"one pending per version" constraint counts pending requests only, so two
people may draft; the second to submit is told one is already waiting.
"""

from __future__ import annotations

from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from governance.audit import audit_record
from governance.models import PromotionRequest

Status = PromotionRequest.Status


class Action(StrEnum):
    EDIT = "edit"
    SUBMIT = "submit"
    WITHDRAW = "withdraw"
    APPROVE = "approve"
    REJECT = "reject"


class Actor(StrEnum):
    REQUESTER = "requester"  # only the person who made the request
    OTHER = "other"  # only a model admin who did not make it (four eyes)


# (state, action) -> (new state, who may do it). Anything absent is an illegal transition.
TRANSITIONS: dict[tuple[str, Action], tuple[str, Actor]] = {
    (Status.DRAFT, Action.EDIT): (Status.DRAFT, Actor.REQUESTER),
    (Status.DRAFT, Action.SUBMIT): (Status.PENDING, Actor.REQUESTER),
    (Status.DRAFT, Action.WITHDRAW): (Status.WITHDRAWN, Actor.REQUESTER),
    (Status.PENDING, Action.WITHDRAW): (Status.WITHDRAWN, Actor.REQUESTER),
    (Status.PENDING, Action.APPROVE): (Status.APPROVED, Actor.OTHER),
    (Status.PENDING, Action.REJECT): (Status.REJECTED, Actor.OTHER),
}


class TransitionRefused(ValidationError):
    """The request's state does not allow the action."""

    def __init__(self, message: str, *, action: Action, state: str) -> None:
        super().__init__(message)
        self.action, self.state = action, state


class TransitionForbidden(PermissionDenied):
    """The state allows the action, but not by this person."""

    def __init__(self, message: str, *, action: Action, state: str) -> None:
        super().__init__(message)
        self.action, self.state = action, state


def _refusal_words(action: Action, state: str) -> str:
    if state == Status.DRAFT:
        return f"This request is a draft that its requester has not submitted: it cannot be {_past(action)} yet."
    if state == Status.PENDING and action in (Action.EDIT, Action.SUBMIT):
        return "This request was already submitted and is waiting for a decision; it can no longer be edited."
    return f"This request was already {state}: it cannot be {_past(action)}."


def _past(action: Action) -> str:
    return {"edit": "edited", "submit": "submitted", "withdraw": "withdrawn"}.get(action, f"{action}d")


def transition_target(request: PromotionRequest, action: Action, *, user: AbstractBaseUser) -> str:
    """The state `action` by `user` leads to; raises TransitionRefused / TransitionForbidden otherwise.

    Precondition: `request` was read under its row lock (the state cannot move under the caller).
    """
    allowed = TRANSITIONS.get((request.status, action))
    if allowed is None:
        raise TransitionRefused(_refusal_words(action, request.status), action=action, state=request.status)
    target, who = allowed
    is_requester = request.requested_by_id == user.pk
    if who == Actor.REQUESTER and not is_requester:
        raise TransitionForbidden(
            f"Only the person who made this request can {action} it.", action=action, state=request.status
        )
    if who == Actor.OTHER and is_requester:
        # promotion_decide raises its own SelfDecisionRefused first; this guards any other path.
        raise TransitionForbidden(
            "You made this request; a different model admin must decide it.", action=action, state=request.status
        )
    return target


def transition_refusal_record(
    *, user: AbstractBaseUser, request_id: int, refusal: TransitionRefused | TransitionForbidden
) -> None:
    """Write `promotion.transition_refused` in its own transaction. Precondition: the refused one rolled back."""
    dataset_id = (
        PromotionRequest.objects.filter(pk=request_id).values_list("model_version__dataset_id", flat=True).first()
    )
    with transaction.atomic():
        audit_record(
            actor=user,
            action="promotion.transition_refused",
            object_type="promotion_request",
            object_id=request_id,
            dataset_id=dataset_id,
            before={"status": refusal.state},
            after={"attempted": str(refusal.action)},
            reason=" ".join(getattr(refusal, "messages", None) or [str(refusal)]),
        )
