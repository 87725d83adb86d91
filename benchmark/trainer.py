"""The training loop shared by every method: one place for optimizers, EMA, stages, checkpoints.

A method contributes what makes it different through the hooks of one shared step
(``benchmark.method.accumulate_gradients``); this loop owns everything else. Runs are
reproducible from a seed: every random draw the loop makes (batches, latents, mixing, flips)
comes from one seeded ``torch.Generator`` whose state, like the global RNG's (the generator's
noise inputs), the optimizers', the EMA's and the batch queue's, is saved in each checkpoint, so
a run killed at any point and resumed ends with the same weights as one that was never
interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from benchmark.augment import AdaptiveAugment
from benchmark.config import TrainConfig
from benchmark.errors import DivergedError, describe
from benchmark.io import atomic_torch_save
from benchmark.method import Method, accumulate_gradients, accumulate_regularization, regularization_due
from benchmark.nets import count_parameters
from benchmark.schedule import Span, resolve_schedule
from benchmark.step import Batch, Latents, PathLength, StepContext, StepEnd

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"
PREVIOUS_CHECKPOINT_NAME = "previous.pt"  # the checkpoint before last.pt: the fallback when last.pt is damaged
DAMAGED_SUFFIX = ".damaged"  # an unreadable checkpoint is moved aside under this suffix, never rotated in
_CHECKPOINT_KEYS = ("version", "step", "train_seconds", "method", "optimizers", "rng", "queue")
_CHECKPOINT_VERSION = 1


@dataclass
class TrainData:
    """Training images as uint8 (N, C, H, W) and labels (N,), kept on the training device."""

    images: torch.Tensor
    labels: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class TrainOutcome:
    steps: int
    train_seconds: float
    images_per_second: float
    trainable_parameters: int
    resumed_from: int | None


class BatchQueue:
    """Epoch-wise shuffled indices: with 10 shots and batch 8 every image is seen equally often."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.queue: list[int] = []

    def next(self) -> torch.Tensor:
        while len(self.queue) < self.batch_size:
            self.queue += torch.randperm(self.n, generator=self.generator).tolist()
        batch, self.queue = self.queue[: self.batch_size], self.queue[self.batch_size :]
        return torch.tensor(batch)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * model for parameters; persistent buffers are copied.

    Non-persistent buffers are constants derived from a source when a network is built (frozen
    references, Hyper-Modulation's normalised kernels); the average keeps its own, as rosinality's
    ``accumulate`` never touches g_running's buffers (an unaligned hypermod's are g_running's).
    """
    ema_params = [p for p in ema.parameters()]
    params = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)
    for module_ema, module in zip(ema.modules(), model.modules()):  # the same structure: ema is a deep copy
        for name, b in module._buffers.items():  # a per-step state_dict() would cost more than the copies
            if b is not None and name not in module._non_persistent_buffers_set:
                module_ema._buffers[name].copy_(b)


def compile_forward(module: torch.nn.Module, backend: str = "inductor") -> None:
    """Route ``module``'s calls through ``torch.compile`` in place (parameters and state dict unchanged).

    A call whose first input is a leaf tensor that requires grad stays eager: that is R1's real
    batch, whose penalty differentiates the input gradient again, and compiled graphs (AOTAutograd)
    have no double backward. Shapes are static (a new batch size recompiles, up to dynamo's limit,
    then runs eagerly): with symbolic sizes dynamo cannot trace the noise maps' ``torch.randn``.
    Compile after any ``copy.deepcopy`` of the module: a copy would share the original's compiled
    function. The trainer skips a network whose class sets ``compilable = False`` (one whose
    forward reads data on the host and would compile a graph per batch, e.g. per-class weights).
    """
    eager = module.forward
    compiled = torch.compile(eager, backend=backend, dynamic=False)

    def forward(*args, **kwargs):
        first = args[0] if args else None
        if isinstance(first, torch.Tensor) and first.is_leaf and first.requires_grad:
            return eager(*args, **kwargs)
        return compiled(*args, **kwargs)

    module.forward = forward


class Trainer:
    """Trains one method on one target.

    Args:
        method: a freshly built method (the trainer moves it to ``device`` and attaches the EMA).
        data: the few-shot training set.
        config: the shared recipe.
        device: where to train.
        seed: seeds the training RNG and the global RNG.
        checkpoint_dir: where ``last.pt`` lives; None disables checkpoints and resume.
        evaluate: called as ``evaluate(method, step)`` every ``eval_every`` steps and at the end.
        progress: show a tqdm bar.
        desc: the bar's label.
    """

    def __init__(
        self,
        method: Method,
        data: TrainData,
        config: TrainConfig,
        device: str | torch.device = "cpu",
        seed: int = 0,
        checkpoint_dir: str | Path | None = None,
        evaluate: Callable[[Method, int], None] | None = None,
        progress: bool = True,
        desc: str = "train",
    ):
        self.method = method
        self.config = config
        self.device = torch.device(device)
        self.data = TrainData(data.images.to(self.device), None if data.labels is None else data.labels.to(self.device))
        self.seed = seed
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.evaluate = evaluate
        self.progress = progress
        self.desc = desc

        # Set up.
        method.to(self.device)
        method.attach_ema()
        # Speed settings (docs/performance.md): the CUDA-only ones never touch a CPU run's numbers.
        self._crossovers: list[torch.Tensor] = []  # device scalars, for a compiled G (sample_latents)
        if config.compile:
            for net in (method.G, method.D):
                if net is not None and getattr(net, "compilable", True):  # a network may opt out
                    compile_forward(net, "inductor" if config.compile is True else config.compile)
            if method.n_style_blocks > 1:
                self._crossovers = [torch.tensor(k, device=self.device) for k in range(method.n_style_blocks)]
        if config.cudnn_benchmark and self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.groups = method.param_groups()
        self.optimizers = self._build_optimizers()
        self.path_length = None
        if config.pl_weight and method.path_length_regularization:
            zero = torch.zeros((), device=self.device)
            self.path_length = PathLength(
                config.pl_weight, config.pl_every, config.pl_batch_shrink, config.pl_decay, zero
            )
        # StyleGAN2-ADA's augmentation probability p, steered by D's real logits; checkpointed with the run.
        self.ada = AdaptiveAugment(config.ada_target, config.ada_length, config.ada_every) if config.ada else None
        self.schedule = resolve_schedule(method.name, method.stages(), config.steps, config.stage_scale)
        self.hflip = config.hflip if method.hflip is None else method.hflip
        self.generator = torch.Generator().manual_seed(seed)
        self.queue = BatchQueue(len(data), config.batch_size, self.generator)
        self.step = 0
        self.train_seconds = 0.0
        self.trainable: dict[str, list[torch.nn.Parameter]] = {}
        self._resumed_from: int | None | bool = False  # False: resume() not called yet

    @property
    def trainable_parameter_count(self) -> int:
        return count_parameters(p for g in self.groups for p in g.params)

    def _build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam per optimizer name; each group at lr x its multiplier (x mapping_lr_mult for the mapping)."""
        cfg = self.config

        def ratio(name: str) -> float:
            """Lazy regularization's correction for the extra optimizer steps (StyleGAN2 train.py's
            ``d_reg_ratio`` / ``g_reg_ratio``): every / (every + 1) for lr and as the betas' power."""
            if not cfg.lazy_regularization:
                return 1.0
            every = cfg.r1_every if name == "D" else cfg.pl_every
            return every / (every + 1)

        def lr(group) -> float:
            return cfg.lr * group.lr_mult * (cfg.mapping_lr_mult if group.mapping else 1.0) * ratio(group.optimizer)

        fused = cfg.fused_adam and self.device.type == "cuda"
        return {
            name: torch.optim.Adam(
                [{"params": g.params, "lr": lr(g)} for g in self.groups if g.optimizer == name],
                lr=cfg.lr * ratio(name),
                betas=tuple(b ** ratio(name) for b in cfg.betas),
                fused=True if fused else None,  # None: torch's default (on a CPU, the for-loop update)
            )
            for name in sorted({g.optimizer for g in self.groups})
        }

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """A host tensor drawn from the training RNG, on the training device. On CUDA it goes through
        pinned memory without blocking: a plain copy would wait for the GPU to finish all queued work
        each time latents are drawn (the same values either way)."""
        if self.device.type != "cuda":
            return tensor.to(self.device)
        return tensor.pin_memory().to(self.device, non_blocking=True)

    def _autocast(self):
        """bfloat16 autocast around a step when ``train.amp`` is on (the method's backward included)."""
        if not self.config.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    # -- randomness --------------------------------------------------------------------------
    def sample_latents(self, batch: int, labels: torch.Tensor | None = None) -> Latents:
        """z (and a style-mixing pair with the suite's probability) for ``batch`` fakes.

        ``labels`` are the fakes' classes on a conditional target: given (e.g. the real batch's,
        as Hyper-Modulation does) or drawn uniformly.
        """
        g = self.generator
        style_dim = self.method.style_dim
        z = self._to_device(torch.randn(batch, style_dim, generator=g))
        if not self.method.target.conditional:
            labels = None
        elif labels is None:
            labels = self._to_device(torch.randint(self.method.target.n_classes, (batch,), generator=g))
        mix = torch.rand((), generator=g).item() < self.config.mixing_prob
        if mix and self.method.n_style_blocks > 1:
            # rosinality: the first style drives blocks 0..k, k drawn uniformly from 0..n_blocks-2.
            mix_z = self._to_device(torch.randn(batch, style_dim, generator=g))
            crossover = int(torch.randint(self.method.n_style_blocks - 1, (), generator=g))
            return Latents(z, labels, mix_z, self._crossovers[crossover] if self._crossovers else crossover)
        if self._crossovers:
            # A compiled G sees a Python int as a constant: each crossover, and calls with and
            # without mixing, would compile graphs of their own (dynamo stops at 8 and runs the
            # rest eagerly). With the crossover as a device scalar, and no mixing as z's style in
            # every block (the same images, one more pass of the mapping MLP; a copy of z, since
            # dynamo compiles apart a call whose inputs are one tensor twice), every draw runs one
            # graph per grad mode. This sampler draws the same numbers either way.
            return Latents(z, labels, z.clone(), self._crossovers[-1])
        return Latents(z, labels)

    def next_batch(self) -> Batch:
        idx = self._to_device(self.queue.next())
        images = self.data.images[idx].float() / 127.5 - 1
        if self.hflip:
            flip = self._to_device(torch.rand(len(idx), generator=self.generator) < 0.5)
            images = torch.where(flip[:, None, None, None], images.flip(3), images)
        labels = None if self.data.labels is None else self.data.labels[idx]
        return Batch(images, labels if self.method.target.conditional else None, idx)

    # -- checkpoints -------------------------------------------------------------------------
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / CHECKPOINT_NAME if self.checkpoint_dir else None

    def save_checkpoint(self) -> None:
        path = self.checkpoint_path()
        if path is None:
            return
        state = {
            "version": _CHECKPOINT_VERSION,
            "step": self.step,
            "train_seconds": self.train_seconds,
            "method": self.method.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "rng": {
                "train": self.generator.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            "queue": list(self.queue.queue),
        }
        # The checkpoint it replaces is kept as previous.pt: a last.pt cut short afterwards (a node that
        # died while the folder was copied, a full disk on a file system without atomic renames) then
        # costs the steps since that one, not the cell.
        if self.path_length is not None:
            state["path_length_mean"] = self.path_length.mean
        if self.ada is not None:
            state["ada"] = self.ada.state_dict()
        atomic_torch_save(state, path, previous=path.with_name(PREVIOUS_CHECKPOINT_NAME))

    def _read_checkpoint(self) -> dict | None:
        """The newest readable checkpoint: last.pt, else previous.pt (with a warning naming the damaged file).

        An unreadable file is moved aside (``.damaged``), so the next save does not keep it as the
        fallback; with none readable the cell starts again from step 0, with a warning.
        """
        last = self.checkpoint_path()
        damaged = []
        for path in (last, last.with_name(PREVIOUS_CHECKPOINT_NAME)):
            if not path.exists():
                continue
            try:
                state = torch.load(path, map_location=self.device, weights_only=False)
                if not isinstance(state, dict) or any(k not in state for k in _CHECKPOINT_KEYS):
                    raise ValueError("not a checkpoint of this trainer (keys missing)")
            except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ... on a cut file
                aside = path.with_name(path.name + DAMAGED_SUFFIX)
                path.replace(aside)
                damaged.append(f"checkpoint {path} cannot be read ({describe(err, 120)}), moved aside to {aside.name}")
                continue
            if damaged:
                log.warning("%s; resuming from %s (step %d) instead", "; ".join(damaged), path, state["step"])
            return state
        if damaged:
            log.warning("%s; no earlier checkpoint can be read, so the cell starts again", "; ".join(damaged))
        return None

    def load_checkpoint(self) -> bool:
        path = self.checkpoint_path()
        if path is None:
            return False
        state = self._read_checkpoint()
        if state is None:
            return False
        self.method.load_state_dict(state["method"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        self.generator.set_state(state["rng"]["train"].cpu())
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        self.queue.queue = list(state["queue"])
        if self.path_length is not None:
            self.path_length.mean = state["path_length_mean"].to(self.device)
        if self.ada is not None:
            self.ada.load_state_dict(state["ada"])
        self.step = int(state["step"])
        self.train_seconds = float(state["train_seconds"])
        return True

    # -- the loop ----------------------------------------------------------------------------
    def _enter(self, span: Span) -> None:
        """Begin (or, on resume, re-enter) a stage: its trainable set, and its resets when it starts afresh."""
        stage = span.stage
        self.method.enter_stage(stage)
        if self.step == span.start:  # on resume mid-stage the checkpoint already holds the reset state
            if stage.reset_ema:
                self.method.G_ema.load_state_dict(self.method.G.state_dict())
            if stage.reset_optimizers:
                self.optimizers = self._build_optimizers()
        self.trainable = {
            name: [p for g in self.groups if g.optimizer == name for p in g.params if p.requires_grad]
            for name in self.optimizers
        }
        for name in stage.phases:
            if name not in self.optimizers:
                raise ValueError(f"{self.method.name}: stage {stage.name!r} runs phase {name!r} with no parameters")

    def _evaluate(self) -> None:
        """Run the evaluation callback on a forked RNG, so evaluating never changes the training run."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            self.evaluate(self.method, self.step)

    def _check_finite(self, sums: dict[str, torch.Tensor], count: int) -> dict[str, float]:
        means = {k: (v / max(count, 1)).item() for k, v in sums.items()}
        bad = {k: v for k, v in means.items() if not torch.isfinite(torch.tensor(v))}
        if bad:
            raise DivergedError(f"non-finite loss at step {self.step}: {bad}")
        return means

    def resume(self) -> int | None:
        """Load the last checkpoint if there is one; returns its step (None for a fresh start).

        ``run`` calls this itself; call it first to learn the step (e.g. to drop evaluation rows
        written after that checkpoint by a killed run).
        """
        if self._resumed_from is False:
            torch.manual_seed(self.seed)
            self._resumed_from = self.step if self.load_checkpoint() else None
            if self._resumed_from is not None:
                log.info("resumed from step %d (%s)", self.step, self.checkpoint_path())
        return self._resumed_from

    def run(self) -> TrainOutcome:
        cfg = self.config
        total = self.schedule.total_steps
        resumed_from = self.resume()
        if resumed_from is None and cfg.eval_at_start and self.evaluate is not None:
            self._evaluate()

        every_ckpt = cfg.checkpoint_every or cfg.eval_every
        current: Span | None = None
        sums: dict[str, torch.Tensor] = {}
        count = 0
        bar = tqdm(
            total=total,
            initial=self.step,
            desc=self.desc,
            disable=not self.progress,
            leave=False,
            dynamic_ncols=True,
        )
        start = time.perf_counter()
        while self.step < total:
            span = self.schedule.at(self.step)
            stage = span.stage
            if span is not current:
                current = span
                self._enter(span)
                log.info("stage %r from step %d to %d", stage.name, self.step, span.end)
            batch = self.next_batch() if stage.uses_data else None
            for phase in stage.phases:
                ctx = StepContext(
                    step=self.step,
                    stage=stage,
                    phase=phase,
                    sample_latents=self.sample_latents,
                    r1_gamma=cfg.r1_gamma,
                    r1_every=cfg.r1_every,
                    trainable=self.trainable,
                    generator=self.generator,
                    lazy_regularization=cfg.lazy_regularization,
                    path_length=self.path_length,
                    ada=self.ada,
                )
                optimizer = self.optimizers[phase]
                optimizer.zero_grad(set_to_none=True)
                with self._autocast():
                    terms = accumulate_gradients(self.method, phase, batch, ctx)
                optimizer.step()
                if regularization_due(phase, ctx):  # StyleGAN2's lazy R1 / path-length step
                    optimizer.zero_grad(set_to_none=True)
                    with self._autocast():
                        terms.update(accumulate_regularization(self.method, phase, batch, ctx))
                    optimizer.step()
                if self.ada is not None and phase == "D":
                    terms["ada_p"] = torch.tensor(self.ada.p)  # logged with the losses (its mean over the interval)
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0) + v.float()
            t = self.step
            decay = min(cfg.ema_decay, (1 + t) / (10 + t)) if cfg.ema_rampup else cfg.ema_decay
            if "G" in stage.phases:
                update_ema(self.method.G_ema, self.method.G, decay)
            self.method.after_step(StepEnd(self.step, self.schedule, self.data.images, self.data.labels, decay))
            self.step += 1
            count += 1
            bar.update(1)

            boundary = self.step % cfg.log_every == 0 or self.step % every_ckpt == 0 or self.step == total
            # A stage before the budget (self-alignment) has seen no target data: nothing to evaluate yet.
            evaluate_now = (self.step % cfg.eval_every == 0 and not stage.extends_budget) or self.step == total
            if boundary or evaluate_now:
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                self.train_seconds += time.perf_counter() - start
                means = self._check_finite(sums, count)
                sums, count = {}, 0
                log.info("step %d [%s] %s", self.step, stage.name, " ".join(f"{k}={v:.4f}" for k, v in means.items()))
                bar.set_postfix({k: f"{v:.3f}" for k, v in list(means.items())[:4]}, refresh=False)
                if evaluate_now and self.evaluate is not None:
                    self._evaluate()
                if evaluate_now or self.step % every_ckpt == 0:
                    self.save_checkpoint()
                start = time.perf_counter()
        bar.close()
        images = cfg.steps * cfg.batch_size  # the budget's real images (a data-free stage reads none)
        return TrainOutcome(
            steps=self.step,
            train_seconds=self.train_seconds,
            images_per_second=images / self.train_seconds if self.train_seconds > 0 else float("nan"),
            trainable_parameters=self.trainable_parameter_count,
            resumed_from=resumed_from,
        )
