"""User-facing errors.

Anything a user can cause (a missing data root, a malformed YAML, an unknown method, an
incompatible checkpoint) is raised as a :class:`BenchmarkError` whose message names the
problem and the fix. The CLI prints it on one line and exits with code 2; nothing else in the
code base catches it, so library users get an ordinary exception.
"""


class BenchmarkError(Exception):
    """A problem with the user's input, with a message that says how to fix it."""


class DivergedError(RuntimeError):
    """A training loss became NaN or infinite; the cell is marked failed and the suite goes on."""


def describe(exc: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message``, short enough for a one-line error about a file we could not read."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:limit]}" if lines else type(exc).__name__


def abbreviate(items: list[str], n: int) -> str:
    """The first ``n`` items joined by commas, then ``(+k more)``: key lists in one-line errors."""
    shown = ", ".join(items[:n])
    return f"{shown} (+{len(items) - n} more)" if len(items) > n else shown
