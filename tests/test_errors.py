"""describe(): the cause of an exception on one line, whole, without colour codes or unsafe advice."""

import torch

from benchmark.errors import describe

GOOGLE_DRIVE_PAGE = (
    b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head>"
    b"<body>Google Drive can't scan this file for viruses.</body></html>\n"
)


def _load_error(path):
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        return exc
    raise AssertionError(f"{path} loaded")


def test_the_weights_only_cause_is_kept_past_200_characters(tmp_path):
    page = tmp_path / "stylegan-256px-new.model"
    page.write_bytes(GOOGLE_DRIVE_PAGE)
    exc = _load_error(page)
    assert str(exc).index("Unsupported operand 60") > 200  # what a 200-character cut lost
    assert describe(exc) == "UnpicklingError: Unsupported operand 60"


class Pickled(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)


def test_a_pickled_module_gives_its_reason_without_colour_codes_or_advice_to_load_it(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(Pickled(), path)
    exc = _load_error(path)
    assert "\x1b[" in str(exc) and "weights_only` set to `False`" in str(exc)  # torch's own message
    text = describe(exc)
    assert text.startswith("UnpicklingError: Unsupported global: GLOBAL ") and "Pickled was not an allowed" in text
    assert "\x1b" not in text and "weights_only" not in text and "trust" not in text and "\n" not in text


def test_long_messages_are_cut_at_whole_sentences_never_inside_one():
    first = "PytorchStreamReader failed reading zip archive: failed finding central directory."
    exc = RuntimeError(f"{first} This is an internal miniz error. {'Blah blah. ' * 40}\nsecond line")
    text = describe(exc)
    assert text.startswith(f"RuntimeError: {first} This is an internal miniz error.")
    assert len(text) <= len("RuntimeError: ") + 300 and text.endswith(".") and "second line" not in text
    very_long = "x" * 500
    assert describe(ValueError(very_long)) == f"ValueError: {very_long}"  # one sentence is never cut
    assert describe(ValueError("")) == "ValueError"
