"""Errors organised by what the user should do about them.

Every error a user can cause derives from :class:`TasksyncError`; the CLI prints its message in
one line and exits with its ``exit_code``, never with a traceback.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthError",
    "ConfigError",
    "CrmError",
    "NotFoundError",
    "RateLimitedError",
    "SafetyStop",
    "StalePlanError",
    "TasksyncError",
    "TransientError",
]


class TasksyncError(Exception):
    """A problem the user can fix; the message says what and where."""

    exit_code = 1


class ConfigError(TasksyncError):
    """Missing or invalid configuration or input file."""

    exit_code = 2


class CrmError(TasksyncError):
    """A CRM export that cannot be used. ``problems`` lists ``file:row:column: ...`` lines."""

    exit_code = 3

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class StalePlanError(TasksyncError):
    """The board changed since the plan was computed."""

    exit_code = 4


class SafetyStop(TasksyncError):
    """A guard refused to apply (empty board, truncated export, too many moves)."""

    exit_code = 5


class ApiError(TasksyncError):
    """A remote API refused a request; ``status`` is its HTTP status when there was one."""

    exit_code = 6

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(ApiError):
    """401/403: wrong or missing token, or no access to the board."""


class NotFoundError(ApiError):
    """404: the board, project, card or task does not exist (or is not visible)."""


class TransientError(ApiError):
    """5xx, timeout or dropped connection: safe to retry an idempotent request."""


class RateLimitedError(TransientError):
    """429 after the retry budget ran out. ``retry_after`` is seconds to wait, if known."""

    def __init__(self, message: str, status: int | None = 429, retry_after: float | None = None):
        super().__init__(message, status)
        self.retry_after = retry_after
