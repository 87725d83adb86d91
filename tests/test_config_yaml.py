"""YAML read differently than written: every place a suite names something refuses what YAML 1.1 turns into
a boolean, null or number, quoting what was written; numbers are read as YAML 1.2 reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.config import check_as_written, load_suite, parse_suite, read_yaml
from benchmark.errors import BenchmarkError
from tests.conftest import tiny_suite, write_suite

SUITE = """\
name: tiny
resolution: 32
image_channels: 1
sources:
  digits-0to6: {kind: toy-pretrain, options: {dataset: digits, classes: [0, 1, 2, 3, 4, 5, 6]}}
feature_extractor: digits-classifier
targets:
  - name: TARGET_NAME
    dataset: digits
    classes: CLASSES
    shots: SHOTS
methods: METHODS
seeds: SEEDS
train: {steps: 4, lr: LR}
eval: {n_fake: 40}
"""
DEFAULTS = {
    "TARGET_NAME": "digit7",
    "CLASSES": "[7]",
    "SHOTS": "[5]",
    "METHODS": "[freezed]",
    "SEEDS": "[0]",
    "LR": "0.002",
}


def _suite(tmp_path, **values) -> str:
    text = SUITE
    for key, default in DEFAULTS.items():
        text = text.replace(key, values.get(key, default))
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return str(path)


def _error(tmp_path, **values) -> str:
    with pytest.raises(BenchmarkError) as info:
        load_suite(_suite(tmp_path, **values))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_class_folders_named_no_and_on_are_refused_as_booleans_with_the_fix(tmp_path):
    message = _error(tmp_path, CLASSES="[no, on]")
    assert message.endswith(
        "targets[0].classes[0] is no, which YAML reads as the boolean false: quote it ('no') if it is a name"
    )
    assert "unknown class False" not in message
    quoted = load_suite(_suite(tmp_path, CLASSES="[7, 'no']", TARGET_NAME="'yes'"))  # quoted, they are names
    assert quoted.targets[0].classes == (7, "no") and quoted.targets[0].name == "yes"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"CLASSES": "[7, off]"}, "targets[0].classes[1] is off, which YAML reads as the boolean false"),
        ({"CLASSES": "[1e3]"}, "targets[0].classes[0] is 1e3, which YAML reads as the number 1000.0: quote it ('1e3')"),
        ({"CLASSES": "[1.10]"}, "targets[0].classes[0] is 1.10, which YAML reads as the number 1.1"),
        ({"CLASSES": "[0x7]"}, "targets[0].classes[0] is 0x7, which YAML reads as the number 7"),
        ({"CLASSES": "[~]"}, "targets[0].classes[0] is ~, which YAML reads as null (no value): give a name"),
        ({"CLASSES": "[null]"}, "targets[0].classes[0] is null, which YAML reads as null"),
        ({"TARGET_NAME": "yes"}, "targets[0].name is yes, which YAML reads as the boolean true"),
        ({"TARGET_NAME": "null"}, "targets[0].name is null, which YAML reads as null"),
        ({"TARGET_NAME": "1e3"}, "targets[0].name is 1e3, which YAML reads as the number 1000.0"),
        (
            {"METHODS": "[freezed, {name: freezed, label: on}]"},
            "methods[1].label is on, which YAML reads as the boolean",
        ),
        ({"METHODS": "[freezed, null]"}, "methods[1] is null, which YAML reads as null"),
        (
            {"METHODS": "[freezed, {name: minegan, options: {sources: [digits-0to6, off]}}]"},
            "methods[1].options.sources[1] is off, which YAML reads as the boolean false",
        ),
        ({"SHOTS": "[yes]"}, "targets[0].shots[0] is yes, which YAML reads as the boolean true: write a number"),
        ({"SHOTS": "[1e1]"}, "targets[0].shots[0] is 1e1 (read as 10.0): shots are whole numbers"),
        ({"SHOTS": "10, 40"}, "targets[0].shots is '10, 40': shots are whole numbers of images per class"),
        ({"SHOTS": "[0]"}, "targets[0].shots[0] is 0: shots are whole numbers"),
        ({"SEEDS": "[on]"}, "seeds[0] is on, which YAML reads as the boolean true: write a number"),
        ({"SEEDS": "0, 1"}, "seeds is '0, 1': seeds are whole numbers >= 0"),
        ({"SEEDS": "[-1]"}, "seeds[0] is -1: seeds are whole numbers >= 0"),
        ({"LR": "0.002, hflip: 'no'"}, "train.hflip is 'no': write true or false, without quotes"),
        ({"TARGET_NAME": "digit7\n    conditional: 'no'"}, "targets[0].conditional is 'no': write true or false"),
    ],
)
def test_values_yaml_reads_as_something_else_are_one_line_errors(tmp_path, values, expected):
    assert expected in _error(tmp_path, **values)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"CLASSES": "[010]"}, "at line 10, column 15: 010 is read by YAML as the octal number 8: write 10 for the"),
        ({"SHOTS": "[010]"}, "at line 11, column 13: 010 is read by YAML as the octal number 8"),
        ({"SEEDS": "[1:30]"}, "1:30 is read by YAML as the base-60 number 90: quote it ('1:30') if it is a name"),
    ],
)
def test_octal_and_base_60_numbers_are_refused_where_they_stand(tmp_path, values, expected):
    message = _error(tmp_path, **values)
    assert expected in message and "malformed" not in message


def test_exponent_numbers_are_numbers(tmp_path):
    suite = load_suite(_suite(tmp_path, LR="1e-4"))
    assert suite.train.lr == 1e-4 and isinstance(suite.train.lr, float)  # PyYAML alone reads the text "1e-4"


def test_a_key_given_twice_is_refused(tmp_path):
    path = Path(_suite(tmp_path))
    path.write_text(path.read_text() + "eval: {n_fake: 80}\n")  # a second eval section, below the first
    with pytest.raises(BenchmarkError, match=r"at line 16, column 1: the key 'eval' is given twice in one mapping"):
        read_yaml(path)


def test_scalars_where_lists_go(tmp_path):
    one = load_suite(_suite(tmp_path, CLASSES="7", SHOTS="5", SEEDS="3", METHODS="freezed"))
    assert one.targets[0].classes == (7,) and one.targets[0].shots == (5,) and one.seeds == (3,)
    assert [m.name for m in one.methods] == ["freezed"]
    raw = tiny_suite()
    raw["targets"][0]["classes"] = "seven"
    assert parse_suite(raw).targets[0].classes == ("seven",)  # one name, not its letters
    raw["eval"]["metrics"] = "fid"
    assert parse_suite(raw).eval.metrics == ("fid",)  # not f, i, d
    raw["targets"] = {"name": "digit7", "dataset": "digits"}
    with pytest.raises(BenchmarkError, match="targets must be a list of targets"):
        parse_suite(raw)


def test_suites_built_in_code_are_checked_without_the_text():
    raw = tiny_suite()
    raw["targets"][0]["classes"] = [False, True]
    with pytest.raises(BenchmarkError, match=r"targets\[0\].classes\[0\] was read by YAML as the boolean false"):
        parse_suite(raw)
    check_as_written(tiny_suite())  # the test suite itself is fine


def test_a_suite_file_that_is_not_text_is_one_line(tmp_path):
    path = write_suite(tmp_path / "binary.yaml", tiny_suite())
    path.write_bytes(b"\xff\xfe" + "name: x".encode("utf-16-le"))
    with pytest.raises(BenchmarkError, match="not a UTF-8 text file"):
        read_yaml(path)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s.update(targets=["digit7"]), "targets[0]: expected a mapping, got str"),
        (lambda s: s.update(methods=[5]), "methods[0]: expected a mapping, got int"),
        (lambda s: s["sources"].update(extra="toy-pretrain"), "sources.extra: expected a mapping, got str"),
        (lambda s: s.update(feature_extractor=5), "feature_extractor: expected a mapping, got int"),
        (lambda s: s.update(sources=["digits-0to6"]), "sources must be a mapping of names to sources"),
    ],
)
def test_a_scalar_where_a_mapping_goes_is_one_line(mutate, expected):
    raw = tiny_suite()
    mutate(raw)
    with pytest.raises(BenchmarkError) as info:
        parse_suite(raw)
    assert expected in str(info.value)
