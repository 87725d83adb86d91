"""The shared loop: checkpoint round trip, bit-exact resume, stages, divergence detection."""

import dataclasses

import pytest
import torch

import benchmark.trainer
from benchmark.errors import DivergedError
from benchmark.method import Method, accumulate_gradients, build_method
from benchmark.schedule import Stage
from benchmark.trainer import Trainer, compile_forward
from tests.methods.helpers import quick_config, toy_data, toy_target


class _Kill(Exception):
    pass


def _trainer(source, steps, ckpt_dir=None, evaluate=None, name="transfergan", seed=3, **cfg):
    torch.manual_seed(seed)
    target = toy_target()
    method = build_method(name, source, target)
    config = quick_config(steps=steps, **cfg)
    return Trainer(
        method, toy_data(target), config, seed=seed, checkpoint_dir=ckpt_dir, evaluate=evaluate, progress=False
    )


def _state(trainer):
    return {k: v.clone() for k, v in trainer.method.state_dict().items()}


def test_checkpoint_round_trip(tiny_source, tmp_path):
    a = _trainer(tiny_source, 2, tmp_path, eval_every=2)
    a.run()
    b = _trainer(tiny_source, 2, tmp_path, eval_every=2)
    assert b.resume() == 2
    for k, v in _state(a).items():
        assert torch.equal(v, b.method.state_dict()[k]), k
    for name in a.optimizers:
        sa, sb = a.optimizers[name].state_dict()["state"], b.optimizers[name].state_dict()["state"]
        assert sa.keys() == sb.keys() and all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    assert torch.equal(a.generator.get_state(), b.generator.get_state())


def test_resume_after_interruption_is_bit_identical(tiny_source, tmp_path):
    steps = 6
    reference = _trainer(tiny_source, steps, None, eval_every=2, mixing_prob=0.5)
    reference.run()

    def die_at_4(method, step):
        if step == 4:
            raise _Kill  # killed after evaluating step 4, before its checkpoint: resume from step 2

    interrupted = _trainer(tiny_source, steps, tmp_path, die_at_4, eval_every=2, mixing_prob=0.5)
    with pytest.raises(_Kill):
        interrupted.run()
    resumed = _trainer(tiny_source, steps, tmp_path, None, eval_every=2, mixing_prob=0.5)
    assert resumed.resume() == 2
    outcome = resumed.run()
    assert outcome.resumed_from == 2 and outcome.steps == steps
    for k, v in _state(reference).items():
        assert torch.equal(v, resumed.method.state_dict()[k]), k


def test_a_damaged_last_checkpoint_falls_back_to_the_previous_one_and_ends_the_same(tiny_source, tmp_path, caplog):
    """A last.pt cut short (a node that died while it was copied) costs the steps since previous.pt, not the
    cell; with no readable checkpoint left the cell starts again. Either way it ends bit-identical."""
    steps = 6
    reference = _trainer(tiny_source, steps, None, eval_every=2)
    reference.run()

    def die_at_6(method, step):
        if step == 6:
            raise _Kill  # after the checkpoints of steps 2 and 4

    for damage, resumes_at in (("half", 2), ("both", None)):
        ckpt = tmp_path / damage
        with pytest.raises(_Kill):
            _trainer(tiny_source, steps, ckpt, die_at_6, eval_every=2).run()
        last, previous = ckpt / "last.pt", ckpt / "previous.pt"
        assert torch.load(previous, weights_only=False)["step"] == 2
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
        if damage == "both":
            previous.write_bytes(b"")
        resumed = _trainer(tiny_source, steps, ckpt, None, eval_every=2)
        with caplog.at_level("WARNING", logger="benchmark.trainer"):
            assert resumed.resume() == resumes_at
        assert f"checkpoint {last} cannot be read" in caplog.text and "last.pt.damaged" in caplog.text
        assert resumed.run().steps == steps
        for k, v in _state(reference).items():
            assert torch.equal(v, resumed.method.state_dict()[k]), (damage, k)
        caplog.clear()


def test_a_full_disk_while_checkpointing_is_one_line_naming_the_folder_and_keeps_the_last_one(
    tiny_source, tmp_path, monkeypatch
):
    """torch's writer wraps the OSError (ENOSPC) in a RuntimeError of its own; it is found, and the
    checkpoint already there is left as it was."""
    import errno
    import io as stdio

    import benchmark.io
    from benchmark.errors import BenchmarkError

    trainer = _trainer(tiny_source, 2, tmp_path)
    trainer.save_checkpoint()
    before = (tmp_path / "last.pt").read_bytes()

    class FullDisk(stdio.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    real_fdopen = benchmark.io.os.fdopen
    monkeypatch.setattr(benchmark.io.os, "fdopen", lambda fd, mode: (real_fdopen(fd, mode).close(), FullDisk())[1])
    with pytest.raises(BenchmarkError, match=r"no space left .* writing last\.pt in " + str(tmp_path)) as err:
        trainer.save_checkpoint()
    assert "needed" in str(err.value) and "run the same command again" in str(err.value)
    assert (tmp_path / "last.pt").read_bytes() == before and not list(tmp_path.glob(".*.tmp"))


def test_evaluation_does_not_perturb_training(tiny_source):
    calls = []
    plain = _trainer(tiny_source, 4, None, eval_every=2)
    plain.run()
    evaluated = _trainer(
        tiny_source, 4, None, lambda m, s: calls.append((s, m.sample(torch.randn(2, m.style_dim)))), eval_every=2
    )
    evaluated.run()
    assert [s for s, _ in calls] == [0, 2, 4]
    for k, v in _state(plain).items():
        assert torch.equal(v, evaluated.method.state_dict()[k]), k


class _ExplodingMethod(Method):
    """Adds an infinite loss term at step 2."""

    name = "exploding"

    def __init__(self, source, target):
        super().__init__(source, target)
        self.G, self.D = source.build_generator(), source.build_discriminator()

    def g_regularizers(self, batch, fakes, ctx):
        return {"boom": fakes.images.sum() * (float("inf") if ctx.step >= 2 else 0.0)}


def test_non_finite_loss_raises_diverged(tiny_source):
    method = _ExplodingMethod(tiny_source, toy_target())
    trainer = Trainer(method, toy_data(toy_target()), quick_config(steps=5, log_every=1), progress=False)
    with pytest.raises(DivergedError, match="step 3"):
        trainer.run()


def test_lazy_r1_runs_on_the_configured_steps(tiny_source, monkeypatch):
    seen = []
    trainer = _trainer(tiny_source, 5, r1_every=2)

    def spy(method, phase, batch, ctx):
        terms = accumulate_gradients(method, phase, batch, ctx)
        if phase == "D":
            seen.append("r1" in terms)
        return terms

    monkeypatch.setattr(benchmark.trainer, "accumulate_gradients", spy)
    trainer.run()
    assert seen == [True, False, True, False, True]


def test_stages_narrow_what_trains(tiny_source):
    """A two-stage method: D only, then G too; G is untouched by the first stage."""

    class TwoStage(_ExplodingMethod):
        def g_regularizers(self, batch, fakes, ctx):
            return {}

        @classmethod
        def schedule(cls, **_):
            return [Stage("d-only", 2, ("D",)), Stage("both")]

    method = TwoStage(tiny_source, toy_target())
    g_before = {k: v.clone() for k, v in method.G.state_dict().items()}
    g_at = {}

    def snapshot(m, step):
        g_at[step] = {k: v.clone() for k, v in m.G.state_dict().items()}

    config = dataclasses.replace(quick_config(steps=3), eval_every=2)
    trainer = Trainer(method, toy_data(toy_target()), config, evaluate=snapshot, progress=False)
    trainer.run()
    assert all(torch.equal(v, g_at[2][k]) for k, v in g_before.items())
    assert any(not torch.equal(v, g_at[3][k]) for k, v in g_before.items())


def test_cpu_runs_keep_the_plain_loop(tiny_source):
    """The CUDA-only speed settings are on by default and change nothing on a CPU."""
    benchmark_mode = torch.backends.cudnn.benchmark
    trainer = _trainer(tiny_source, 2)
    assert trainer.config.fused_adam and trainer.config.cudnn_benchmark and not trainer.config.amp
    assert all(not o.defaults["fused"] for o in trainer.optimizers.values())
    assert torch.backends.cudnn.benchmark == benchmark_mode
    assert "forward" not in vars(trainer.method.G) and "forward" not in vars(trainer.method.D)  # not compiled


def test_amp_runs_each_step_under_bf16_autocast(tiny_source, monkeypatch):
    seen = []
    trainer = _trainer(tiny_source, 2, amp=True)

    def spy(method, phase, batch, ctx):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return accumulate_gradients(method, phase, batch, ctx)

    monkeypatch.setattr(benchmark.trainer, "accumulate_gradients", spy)
    trainer.run()  # finite losses, or DivergedError
    assert seen == [(True, torch.bfloat16)] * 4  # two steps of D and G
    assert not torch.is_autocast_enabled("cpu")


def test_compile_forward_compiles_all_but_the_r1_pass():
    """Compiled graphs have no double backward: R1's real batch (a leaf needing grad) runs eager."""
    from torch._dynamo.testing import CompileCounterWithBackend

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Softplus(), torch.nn.Flatten(), torch.nn.LazyLinear(1))
    images = torch.randn(2, 1, 6, 6)
    eager = net(images)
    counter = CompileCounterWithBackend("aot_eager")
    compile_forward(net, counter)
    try:
        fake = images * torch.ones((), requires_grad=True)  # not a leaf, as a generator's output
        assert torch.allclose(net(fake), eager) and counter.frame_count == 1
        real = images.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(net(real).sum(), real, create_graph=True)
        grad.pow(2).sum().backward()  # raises if the graph came from AOTAutograd
        assert counter.frame_count == 1 and net[0].weight.grad is not None
    finally:
        torch._dynamo.reset()


def test_compile_option_wraps_g_and_d(tiny_source):
    trainer = _trainer(tiny_source, 2, compile="eager")
    assert "forward" in vars(trainer.method.G) and "forward" in vars(trainer.method.D)
    assert "forward" not in vars(trainer.method.G_ema)  # evaluation samples eagerly


def test_a_device_scalar_crossover_gives_the_same_images(tiny_source):
    """What a compiled G receives (sample_latents): the crossover as a 0-d tensor, no mixing as z twice."""
    torch.manual_seed(0)
    G = tiny_source.build_generator()
    n_blocks = len(G.config.resolutions)
    z, mix_z = torch.randn(2, 4, G.config.style_dim)
    noise = G.make_noise(4)
    with torch.no_grad():
        for k in range(n_blocks - 1):
            assert torch.equal(G(z, None, noise, mix_z, torch.tensor(k)), G(z, None, noise, mix_z, k))
        assert torch.equal(G(z, None, noise, z.clone(), torch.tensor(n_blocks - 1)), G(z, None, noise))


def test_compiled_g_runs_one_graph_per_grad_mode_whatever_the_style_mixing_draws(tiny_source, monkeypatch):
    """A Python crossover would compile a graph per value (and dynamo runs eagerly past 8)."""
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    from benchmark.nets import StyledGenerator

    torch._dynamo.reset()
    trainer = _trainer(tiny_source, 8, compile="eager", mixing_prob=0.5)
    drawn = []
    sample = trainer.sample_latents

    def spy(*args, **kwargs):
        latents = sample(*args, **kwargs)
        drawn.append(int(latents.crossover))
        return latents

    monkeypatch.setattr(trainer, "sample_latents", spy)
    try:
        trainer.run()
        graphs = len(_debug_get_cache_entry_list(StyledGenerator.forward.__code__))
    finally:
        torch._dynamo.reset()
    n_blocks = trainer.method.n_style_blocks
    assert n_blocks - 1 in drawn and len(set(drawn)) >= 3, drawn  # unmixed draws and two crossovers at least
    assert graphs == 2  # the D step's fakes without grad, the G step's with


def test_after_step_runs_after_each_update_and_its_changes_are_checkpointed(tiny_source, tmp_path):
    seen = []

    def after_step(end):
        G_ema = trainer.method.G_ema
        seen.append((end.step, end.ema_decay, end.schedule.total_steps, end.images.shape[0]))
        with torch.no_grad():  # a change made here is in that step's checkpoint
            next(G_ema.parameters()).fill_(float(end.step))

    trainer = _trainer(tiny_source, 3, tmp_path, eval_every=3)
    trainer.method.after_step = after_step
    trainer.run()
    assert seen == [(s, trainer.config.ema_decay, 3, 6) for s in range(3)]
    resumed = _trainer(tiny_source, 3, tmp_path, eval_every=3)
    resumed.resume()
    first = next(resumed.method.G_ema.parameters())
    assert torch.equal(first, torch.full_like(first, 2.0))


def test_the_default_after_step_changes_nothing(tiny_source):
    a, b = _trainer(tiny_source, 2), _trainer(tiny_source, 2)
    b.method.after_step = lambda end: None
    a.run(), b.run()
    for k, v in _state(a).items():
        assert torch.equal(v, b.method.state_dict()[k]), k
