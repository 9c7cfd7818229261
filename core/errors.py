"""The one family of user-facing errors: each carries a sentence a person can act on."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class CloudTuneError(Exception):
    """Base of every error shown to a user.

    The message is one or more plain sentences that name what is wrong and how to fix it.
    Pages and the CLI print ``str(err)`` and never a traceback.
    """

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        self.problems = list(problems) if problems else [message]
        super().__init__(message)


class SpecError(CloudTuneError):
    """A study spec failed validation; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        text = "The study spec has {} problem{}:\n".format(
            len(problems), "" if len(problems) == 1 else "s"
        ) + "\n".join(f"- {p}" for p in problems)
        super().__init__(text, problems=problems)


class DatasetError(CloudTuneError):
    """A dataset is missing, corrupt or in a format we cannot read."""


class StoreError(CloudTuneError):
    """The result store cannot be opened or written."""


class BackendNotReady(CloudTuneError):
    """A backend lacks credentials, settings or resources; ``problems`` says what and how to fix it."""


class BackendError(CloudTuneError):
    """A backend call failed (the provider's error turned into a sentence)."""


class BudgetReached(CloudTuneError):
    """A run hit its time or cost cap."""


class TrialFailed(CloudTuneError):
    """One trial failed; the study goes on (recorded, not fatal)."""


class NotFound(CloudTuneError):
    """A study, run or trial asked for by id or name does not exist."""
