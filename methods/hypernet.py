"""The Hyper-Modulation generator (Laria et al. 2022): a frozen StyleGAN whose conv kernels a class decides.

Every synthesis conv keeps its source kernel only in normalised form, W_hat = (W - mu) / sigma per
(out, in) channel pair over the kernel, and its bias as b_hat = (b - mean) / std over channels
(non-persistent buffers: they are rebuilt from the source, never trained). A task network maps a
class to a task vector t, and per conv a hypernetwork gives gamma(t), beta(t) per channel pair and
a bias offset: W_c = gamma * W_hat + beta, b_c = b_hat + delta(t). mu and sigma are not added
back; self-alignment teaches the hypernetwork to reproduce them (``source_forward`` computes the
source's convs from the same buffers, which is what self-alignment matches).

The modulated weights depend only on the class, so a call sorts its batch by class and builds
one weight set per class present, running one conv per class over that class's samples. The
official code (hecoding/Hyper-Modulation model/hyper_mod.py ``conv1to1``) builds one weight set
per sample and runs a grouped conv; ``per_sample=True`` keeps that path as the reference (same
outputs; see benchmarks/hypermod_speed.py for the cost of each).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.nets import StyledGenerator
from benchmark.nets.layers import EqualConv2dInner, EqualLinear, FusedUpsample, average_shifted_kernel, equalized_scale
from methods.conv_swap import swap_convs

_MIN_STD = 1e-8  # a constant kernel (or an all-zero bias) normalises to zeros instead of NaN


def equal_linear(layer: EqualLinear, x: torch.Tensor) -> torch.Tensor:
    """An EqualLinear with its scale applied to the input: the same product without materialising the
    scaled weight, which for a 512-channel conv's hypernetwork is a (524288, 64) copy per call."""
    weight = layer.linear.weight_orig
    return F.linear(x * equalized_scale(weight), weight, layer.linear.bias)


@dataclass
class Modulation:
    """What the hyper-modulated convs use during one generator call.

    Attributes:
        task: (rows, task_dim) task vectors, one per class present or one per sample.
        counts: samples per row, the batch being sorted by class; None means one row per sample.
        source: compute the source's own convs (W = sigma * W_hat + mu) instead of modulating.
    """

    task: torch.Tensor | None = None
    counts: list[int] | None = None
    source: bool = False


class ModulationSlot:
    """The modulation of the call in progress, shared by all hyper convs of one generator."""

    def __init__(self):
        self.current: Modulation | None = None


class HyperConv(nn.Module):
    """A synthesis conv re-parameterised by the hypernetwork.

    Args:
        weight: the source's stored (unscaled) kernel: (out, in, k, k), or (in, out, k, k) when
            ``transposed`` (rosinality's fused upsampling conv).
        bias: the source's bias (out,).
        scale: the layer's equalized-lr multiplier sqrt(2 / (in * k * k)).
        padding: the conv's padding.
        transposed: a stride-2 transposed conv with rosinality's shifted-kernel average.
        task_dim: width of the task vector.
        slot: where the generator puts the current call's modulation.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor,
        scale: float,
        padding: int,
        transposed: bool,
        task_dim: int,
        slot: ModulationSlot,
    ):
        super().__init__()
        weight, bias = weight.detach(), bias.detach()
        mu = weight.mean((2, 3), keepdim=True)
        sigma = weight.std((2, 3), keepdim=True).clamp_min(_MIN_STD)  # unbiased, as the official converter
        bias_mu, bias_sigma = bias.mean(), bias.std().clamp_min(_MIN_STD)
        self.register_buffer("weight_hat", (weight - mu) / sigma, persistent=False)
        self.register_buffer("weight_mu", mu, persistent=False)
        self.register_buffer("weight_sigma", sigma, persistent=False)
        self.register_buffer("bias_hat", (bias - bias_mu) / bias_sigma, persistent=False)
        self.register_buffer("bias_mu", bias_mu, persistent=False)
        self.register_buffer("bias_sigma", bias_sigma, persistent=False)
        self.scale, self.padding, self.transposed, self.slot = scale, padding, transposed, slot
        # gamma and beta for each stored (dim0, dim1) channel pair, interleaved as in the official code
        self.modulation = EqualLinear(task_dim, 2 * weight.shape[0] * weight.shape[1])
        self.bias_modulation = EqualLinear(task_dim, bias.shape[0])

    @classmethod
    def from_conv(cls, conv: EqualConv2dInner, task_dim: int, slot: ModulationSlot) -> HyperConv:
        scale = equalized_scale(conv.weight_orig)
        return cls(conv.weight_orig, conv.bias, scale, conv.padding, False, task_dim, slot)

    @classmethod
    def from_fused(cls, conv: FusedUpsample, task_dim: int, slot: ModulationSlot) -> HyperConv:
        return cls(conv.weight, conv.bias, conv.multiplier, conv.pad, True, task_dim, slot)

    def modulated(self, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled kernels (rows, dim0, dim1, k, k) and biases (rows, out) for task vectors (rows, task_dim)."""
        rows = task.shape[0]
        gamma, beta = equal_linear(self.modulation, task).view(rows, *self.weight_hat.shape[:2], 2).unbind(-1)
        # (gamma * W_hat + beta) * scale, with the scale folded into the small factors
        weights = torch.addcmul(
            (beta * self.scale)[..., None, None], (gamma * self.scale)[..., None, None], self.weight_hat
        )
        biases = self.bias_hat + equal_linear(self.bias_modulation, task)
        return weights, biases

    def source_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The source's scaled kernel and bias, recovered from the normalised buffers."""
        weight = (self.weight_hat * self.weight_sigma + self.weight_mu) * self.scale
        return weight, self.bias_hat * self.bias_sigma + self.bias_mu

    def convolve(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, groups: int = 1) -> torch.Tensor:
        if self.transposed:
            kernel = average_shifted_kernel(weight)
            return F.conv_transpose2d(x, kernel, bias, stride=2, padding=self.padding, groups=groups)
        return F.conv2d(x, weight, bias, padding=self.padding, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        modulation = self.slot.current
        if modulation is None:
            raise RuntimeError("a hyper-modulated conv runs only inside a HyperModGenerator call")
        if modulation.source:
            return self.convolve(x, *self.source_weight())
        weights, biases = self.modulated(modulation.task)
        if modulation.counts is None:  # the official way: one kernel per sample, one grouped conv
            n = x.shape[0]
            out = self.convolve(x.reshape(1, -1, *x.shape[2:]), weights.flatten(0, 1), biases.flatten(), groups=n)
            return out.view(n, -1, *out.shape[2:])
        if len(modulation.counts) == 1:
            return self.convolve(x, weights[0], biases[0])
        chunks = x.split(modulation.counts)
        return torch.cat([self.convolve(xs, w, b) for xs, w, b in zip(chunks, weights, biases)])


class TaskNetwork(nn.Module):
    """Class -> task vector: an equalized-lr embedding, then ``n_layers`` x (EqualLinear + LeakyReLU 0.2).

    Until ``split_classes`` every class uses row 0, the one embedding self-alignment trains; the
    split copies it to every class (once: the flag is a persistent buffer, so a resumed run
    never copies again).

    Args:
        n_classes: rows of the embedding.
        dim: task vector width (official ``--task_size`` 64).
        n_layers: depth of the MLP (official ``--n_mlp_task`` 4).
    """

    def __init__(self, n_classes: int, dim: int = 64, n_layers: int = 4):
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(n_classes, dim))  # official: equal_lr(nn.Embedding(...))
        layers: list[nn.Module] = []
        for _ in range(n_layers):
            layers += [EqualLinear(dim, dim), nn.LeakyReLU(0.2)]
        self.mlp = nn.Sequential(*layers)
        self.register_buffer("classes_split", torch.tensor(False))

    def rows(self, labels: torch.Tensor) -> torch.Tensor:
        """The embedding row each label uses (row 0 for every label before the split)."""
        return labels if bool(self.classes_split) else torch.zeros_like(labels)

    @torch.no_grad()
    def split_classes(self) -> bool:
        """Copy the self-aligned embedding to every class; returns whether it copied."""
        if bool(self.classes_split):
            return False
        self.embedding[1:] = self.embedding[0]
        self.classes_split.fill_(True)
        return True

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embedding[rows] * equalized_scale(self.embedding))


class HyperModGenerator(nn.Module):
    """The source generator with every synthesis conv hyper-modulated by the class's task vector.

    Frozen: the mapping network, noise scales, AdaIN affines, the constant input and to_rgb;
    trainable: the task network and each conv's hypernetwork.

    Args:
        backbone: an unconditional generator with the source's weights (modified in place).
        n_classes: classes of the target (1 when unconditional).
        task_dim: task vector width.
        task_layers: depth of the task MLP.
        per_sample: build one weight set per sample (the official grouped conv) instead of one per class.
    """

    # ``train.compile`` leaves this generator eager (and compiles D): the per-class grouping reads
    # each batch's class counts on the host, and every new mix of counts would compile a graph of
    # its own, up to dynamo's limit.
    compilable = False

    def __init__(
        self,
        backbone: StyledGenerator,
        n_classes: int,
        task_dim: int = 64,
        task_layers: int = 4,
        per_sample: bool = False,
    ):
        super().__init__()
        self.backbone = backbone.requires_grad_(False)
        self.task = TaskNetwork(n_classes, task_dim, task_layers)
        self.per_sample = per_sample
        self._slot = ModulationSlot()
        parts = backbone.parts()
        for r in backbone.config.resolutions:
            swap_convs(
                parts[f"block{r}"],
                lambda conv: HyperConv.from_conv(conv, task_dim, self._slot),
                lambda conv: HyperConv.from_fused(conv, task_dim, self._slot),
            )

    @property
    def config(self):
        return self.backbone.config

    def hyper_convs(self) -> list[HyperConv]:
        return [m for m in self.modules() if isinstance(m, HyperConv)]

    @contextmanager
    def _modulated(self, modulation: Modulation) -> Iterator[None]:
        self._slot.current = modulation
        try:
            yield
        finally:
            self._slot.current = None

    def forward(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        noise: list[torch.Tensor] | None = None,
        mix_z: torch.Tensor | None = None,
        crossover: int | torch.Tensor | None = None,
        return_block_outputs: bool = False,
    ):
        """Images for z (B, style_dim) and labels (B,) (None: class 0, e.g. an unconditional target)."""
        batch = z.shape[0]
        labels = torch.zeros(batch, dtype=torch.long, device=z.device) if labels is None else labels
        noise = self.backbone.make_noise(batch, z.device) if noise is None else noise
        rows = self.task.rows(labels)
        if self.per_sample:
            with self._modulated(Modulation(self.task(rows))):
                return self.backbone(z, None, noise, mix_z, crossover, return_block_outputs)
        order = torch.argsort(rows, stable=True)
        classes, counts = torch.unique_consecutive(rows[order], return_counts=True)
        if len(classes) == 1:
            with self._modulated(Modulation(self.task(classes), [batch])):
                return self.backbone(z, None, noise, mix_z, crossover, return_block_outputs)
        mix_z = None if mix_z is None else mix_z[order]
        with self._modulated(Modulation(self.task(classes), counts.tolist())):
            out = self.backbone(z[order], None, [n[order] for n in noise], mix_z, crossover, return_block_outputs)
        inverse = torch.argsort(order)
        if return_block_outputs:
            return out[0][inverse], [b[inverse] for b in out[1]]
        return out[inverse]

    def source_forward(
        self,
        z: torch.Tensor,
        noise: list[torch.Tensor] | None = None,
        mix_z: torch.Tensor | None = None,
        crossover: int | torch.Tensor | None = None,
        return_block_outputs: bool = False,
    ):
        """The source generator's output (its convs rebuilt from the normalised buffers)."""
        noise = self.backbone.make_noise(z.shape[0], z.device) if noise is None else noise
        with self._modulated(Modulation(source=True)):
            return self.backbone(z, None, noise, mix_z, crossover, return_block_outputs)
