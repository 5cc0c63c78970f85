"""The one error the explorer's API raises, and the check of a request's integers."""

from __future__ import annotations

__all__ = ["ApiError", "request_int"]


class ApiError(Exception):
    """A request the API refuses: HTTP ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def request_int(value, name: str, minimum: int = 0, maximum: int | None = None, text: bool = False) -> int:
    """A request's integer (a JSON number, or query text with ``text``), range-checked;
    ApiError 400 otherwise."""
    if isinstance(value, str) and text:
        try:
            value = int(value, 10)
        except ValueError:
            raise ApiError(400, f"{name} must be an integer, got {value[:40]!r}") from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, f"{name} must be an integer, got {value!r}"[:200])
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ApiError(400, f"{name} must be in {bounds}, got {value}")
    return value
