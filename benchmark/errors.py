"""User-facing errors.

Anything a user can cause (a missing data root, a malformed YAML, an unknown method, an
incompatible checkpoint) is raised as a :class:`BenchmarkError` whose message names the
problem and the fix. The CLI prints it on one line and exits with code 2; nothing else in the
code base catches it, so library users get an ordinary exception.
"""

import re


class BenchmarkError(Exception):
    """A problem with the user's input, with a message that says how to fix it."""


class DivergedError(RuntimeError):
    """A training loss became NaN or infinite; the cell is marked failed and the suite goes on."""


# Terminal colour and style codes: torch puts them in some messages, and a one-line error prints them raw.
_ANSI_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# torch.load(weights_only=True) wraps its reason in paragraphs of advice, among them to load the
# file with weights_only=False, which runs whatever code the file holds; the reason follows this.
_WEIGHTS_ONLY_REASON = "WeightsUnpickler error:"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def describe(exc: BaseException, limit: int = 300) -> str:
    """``Type: the sentence of the message that names the cause``, for a one-line error about a file.

    A message is cut at whole sentences, never inside one: the first sentence is kept however
    long it is (cutting at a fixed width lost causes such as torch's ``Unsupported operand 60``,
    which came after 200 characters of advice), and more follow while they fit in ``limit``.
    Colour codes are removed, and torch's weights-only advice is replaced by its actual reason.
    """
    text = _ANSI_CODES.sub("", str(exc))
    weights_only = _WEIGHTS_ONLY_REASON in text
    if weights_only:
        text = text.split(_WEIGHTS_ONLY_REASON, 1)[1]
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    sentences = _SENTENCE_END.split(lines[0])
    kept = sentences[:1]
    if not weights_only:  # after the reason, torch only advises on allow-listing the classes it names
        for sentence in sentences[1:]:
            if len(" ".join([*kept, sentence])) > limit:
                break
            kept.append(sentence)
    return f"{type(exc).__name__}: {' '.join(kept)}"


def abbreviate(items: list[str], n: int) -> str:
    """The first ``n`` items joined by commas, then ``(+k more)``: key lists in one-line errors."""
    shown = ", ".join(items[:n])
    return f"{shown} (+{len(items) - n} more)" if len(items) > n else shown
