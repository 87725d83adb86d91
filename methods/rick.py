"""RICK: freeze the important filters and prune the irrelevant ones as training goes (Zhao et al., CVPR 2023).

Official code: yunqing-me/RICK ``train_dynamic_update_prune.py`` (the README's commands give the
per-target settings).
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.method import METHODS, Method, ParamGroup, Stage, StepEnd, TargetSpec
from benchmark.nets.layers2 import EqualConv2d, FusedLeakyReLU, ResBlock
from benchmark.schedule import scaled_steps
from benchmark.trainer import update_ema
from methods.importance import STYLEGAN1_REASON, DiscriminatorEMA, buffer_name, estimate_fisher, quantile_line


class Filters:
    """One layer's filters, scored together from the Fisher of its own weights.

    Args:
        pool: layers sharing one quantile line ("G conv", "G affine", "D conv").
        tensors: (name in its network, filter dim) of the layer's weights; score = mean of the first's
            Fisher over all but the filter dim, plus the second's, halved when there are two.
        strict_prune: D's skip convs prune below the prune line and fine-tune at or above it (the
            official ``<`` / ``>=``); every other layer prunes at or below it.
    """

    def __init__(self, key: str, net: str, pool: str, tensors: list[tuple[str, int]], strict_prune: bool = False):
        self.key, self.net, self.pool, self.tensors, self.strict_prune = key, net, pool, tensors, strict_prune


def filter_layers(G: nn.Module, D: nn.Module) -> list[Filters]:
    """G's ``convs`` (kernel; style affine's weight and bias) and D's residual blocks (conv1, conv2, skip)."""
    layers = []
    for i in range(len(G.convs)):
        layers.append(Filters(f"G.convs.{i}.conv", "G", "G conv", [(f"convs.{i}.conv.weight", 1)]))
        affine = f"convs.{i}.conv.modulation"
        layers.append(Filters(f"G.{affine}", "G", "G affine", [(f"{affine}.weight", 0), (f"{affine}.bias", 0)]))
    for j, block in enumerate(D.convs):
        if not isinstance(block, ResBlock):
            continue
        for name in ("conv1", "conv2", "skip"):
            tensors = []
            for k, m in enumerate(getattr(block, name)):
                if isinstance(m, EqualConv2d):
                    tensors.append((f"convs.{j}.{name}.{k}.weight", 0))
                elif isinstance(m, FusedLeakyReLU) and m.bias is not None:
                    tensors.append((f"convs.{j}.{name}.{k}.bias", 0))
            layers.append(Filters(f"D.convs.{j}.{name}", "D", "D conv", tensors, strict_prune=name == "skip"))
    return layers


def filter_scores(fishers: list[torch.Tensor], dims: list[int]) -> torch.Tensor:
    """Per filter: the weight's Fisher averaged over all but the filter dim (+ the bias's, halved)."""
    first, dim = fishers[0], dims[0]
    score = first.mean(dim=[d for d in range(first.ndim) if d != dim])
    return (score + fishers[1]) / 2 if len(fishers) > 1 else score


def _filter_view(mask: torch.Tensor, dim: int, ndim: int) -> torch.Tensor:
    shape = [1] * ndim
    shape[dim] = -1
    return mask.view(shape)


@METHODS.register()
class RICK(DiscriminatorEMA, Method):
    """Zhao et al. CVPR 2023, RICK: freeze the important filters of G and D, prune the irrelevant ones, as it trains.

    Official code: yunqing-me/RICK ``train_dynamic_update_prune.py`` (README commands).

    Stages. ``warmup`` (``warmup_steps``, official ``--warmup_iter 250``, inside the iterations):
    only D's final layers (``final_conv``, ``final_linear``) train and G does not (the official
    loop skips G's backward); G's EMA still moves toward G every step, as ``accumulate`` does.
    ``train`` (the rest): G's ``convs`` (kernels, style affines, noise strengths, activation biases)
    and D's ``convs`` but from_rgb (``convs.0``) and its final layers train. From the end of the
    warm-up, every ``fisher_every`` steps (official 50) the Fisher of those weights is estimated on
    ``g_ema`` and D's EMA over ``fisher_samples`` fixed noises (official ``--num_fisher_img 5`` files
    of batch 2); per filter (``filter_scores``), a score above ``np.percentile(pool, fisher_quantile)``
    freezes the filter until the next estimate, one at or below ``np.percentile(pool, prune_quantile)``
    prunes it: zeroed and kept zero. The pruned set only grows (``zero_idx_merge``). Frozen and
    pruned sets, and the frozen filters' values, are buffers (so in every checkpoint).

    Options and their sources (README): ``fisher_quantile`` 40 and ``prune_quantile`` 0.1 for Babies,
    85 and 0.075 for AFHQ-Cat (the suite sets them per target); 1,750 (Babies) / 2,250 (AFHQ-Cat)
    iterations at batch 2 are train settings (``adam2022``: a target's ``method_train``, the entry's
    ``train: {batch_size: 2}``). ``fisher_seed`` seeds the fixed noises (the official ones
    are files). Under a named budget that shortens the stages (``--budget smoke``) ``fisher_every``
    and ``fisher_samples`` are scaled by the same factor.

    Departures: (1) officially a frozen filter's gradient is zeroed and Adam's momentum may still
    move it, and a pruned filter is zeroed before each optimizer step (so Adam may move it off zero
    until the next); here, after every step, frozen filters are restored to their value at freezing
    and pruned filters zeroed in G, G's EMA and D (their gradients are zeroed as officially), so a
    frozen filter is bit-identical and a pruned one exactly zero throughout, EMA included. (2) The
    noises come from ``fisher_seed`` (see ``methods.importance``).
    """

    name = "rick"
    summary = "Fisher every 50 steps: freeze important filters, prune irrelevant ones (pruned set only grows)"
    plot_style = ("#bcbd22", "-.", "X")
    unsupported_backbones = {"stylegan1": STYLEGAN1_REASON}

    def __init__(
        self,
        source,
        target: TargetSpec,
        fisher_quantile: float = 40.0,
        prune_quantile: float = 0.1,
        warmup_steps: int = 250,
        fisher_every: int = 50,
        fisher_samples: int = 10,
        fisher_seed: int = 0,
    ):
        super().__init__(source, target)
        if not 0 <= prune_quantile <= fisher_quantile <= 100:
            raise ValueError(
                f"need 0 <= prune_quantile <= fisher_quantile <= 100 (percentiles), got {prune_quantile}, "
                f"{fisher_quantile}"
            )
        if warmup_steps < 1 or fisher_every < 1 or fisher_samples < 1:
            raise ValueError("warmup_steps, fisher_every and fisher_samples must be >= 1")
        self.fisher_quantile, self.prune_quantile = float(fisher_quantile), float(prune_quantile)
        self.warmup_steps, self.fisher_every = warmup_steps, fisher_every
        self.fisher_samples, self.fisher_seed = fisher_samples, fisher_seed
        self.G = source.build_generator(target.label_classes)
        self.D = source.build_discriminator(target.label_classes)
        self.attach_d_ema()
        self.layers = filter_layers(self.G, self.D)
        self.sets = nn.Module()  # frozen and pruned filters, the frozen values: checkpointed
        nets = {"G": dict(self.G.named_parameters()), "D": dict(self.D.named_parameters())}
        for layer in self.layers:
            n = nets[layer.net][layer.tensors[0][0]].shape[layer.tensors[0][1]]
            self.sets.register_buffer(buffer_name(f"{layer.key}.frozen"), torch.zeros(n, dtype=torch.bool))
            self.sets.register_buffer(buffer_name(f"{layer.key}.pruned"), torch.zeros(n, dtype=torch.bool))
            for name, dim in layer.tensors:
                p = nets[layer.net][name]
                self.sets.register_buffer(buffer_name(f"{layer.net}.{name}.at_freezing"), p.detach().clone())
                p.register_hook(self._held_gradient(layer, dim, p.ndim))

    # -- the sets -------------------------------------------------------------------------------
    def frozen(self, layer: Filters) -> torch.Tensor:
        return getattr(self.sets, buffer_name(f"{layer.key}.frozen"))

    def pruned(self, layer: Filters) -> torch.Tensor:
        return getattr(self.sets, buffer_name(f"{layer.key}.pruned"))

    def at_freezing(self, layer: Filters, name: str) -> torch.Tensor:
        return getattr(self.sets, buffer_name(f"{layer.net}.{name}.at_freezing"))

    def _held_gradient(self, layer: Filters, dim: int, ndim: int):
        def hook(grad):
            held = self.frozen(layer) | self.pruned(layer)
            return grad * _filter_view(~held, dim, ndim).to(grad.dtype)

        return hook

    def _nets(self) -> dict[str, list[nn.Module]]:
        return {"G": [self.G] + ([self.G_ema] if hasattr(self, "G_ema") else []), "D": [self.D, self.D_ema]}

    @torch.no_grad()
    def hold(self) -> None:
        """Frozen filters back to their value at freezing (G, D), pruned filters to zero (G, G_ema, D, D_ema)."""
        nets = self._nets()
        for layer in self.layers:
            frozen, pruned = self.frozen(layer), self.pruned(layer)
            for name, dim in layer.tensors:
                for k, net in enumerate(nets[layer.net]):
                    p = net.get_parameter(name)
                    if k == 0 and frozen.any():
                        keep = _filter_view(frozen, dim, p.ndim).expand_as(p)
                        p.copy_(torch.where(keep, self.at_freezing(layer, name), p))
                    if pruned.any():
                        p.masked_fill_(_filter_view(pruned, dim, p.ndim).expand_as(p), 0)

    @torch.no_grad()
    def decide(self, images: torch.Tensor, labels: torch.Tensor | None, samples: int) -> None:
        """The Fisher on the EMA networks, then per pool: frozen above the fisher quantile, pruned at or
        below the prune quantile (added to the pruned set), the frozen filters' values recorded."""
        wanted = {(layer.net, name) for layer in self.layers for name, _ in layer.tensors}
        g_params = {n: p for n, p in self.G_ema.named_parameters() if ("G", n) in wanted}
        d_params = {n: p for n, p in self.D_ema.named_parameters() if ("D", n) in wanted}
        with torch.enable_grad():
            g_fisher, d_fisher = estimate_fisher(
                self.G_ema, self.D_ema, g_params, d_params, images, labels, self.target.label_classes,
                samples, self.fisher_seed,
            )  # fmt: skip
        fishers = {"G": g_fisher, "D": d_fisher}
        scores = {
            layer.key: filter_scores([fishers[layer.net][n] for n, _ in layer.tensors], [d for _, d in layer.tensors])
            for layer in self.layers
        }
        for pool in {layer.pool for layer in self.layers}:
            layers = [layer for layer in self.layers if layer.pool == pool]
            pooled = [scores[layer.key] for layer in layers]
            cut, prune = quantile_line(pooled, self.fisher_quantile), quantile_line(pooled, self.prune_quantile)
            for layer in layers:
                score = scores[layer.key].double()
                self.frozen(layer).copy_(score > cut)
                newly = score < prune if layer.strict_prune else score <= prune
                self.pruned(layer).logical_or_(newly)
        nets = {"G": self.G, "D": self.D}
        for layer in self.layers:
            for name, _ in layer.tensors:
                self.at_freezing(layer, name).copy_(nets[layer.net].get_parameter(name))
        self.hold()

    # -- what trains ----------------------------------------------------------------------------
    def _label_path(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        g = list(self.G.class_embed.parameters()) if hasattr(self.G, "class_embed") else []
        d = list(self.D.class_projection.parameters()) if hasattr(self.D, "class_projection") else []
        return g, d

    def _d_final(self) -> list[nn.Parameter]:
        return list(self.D.final_conv.parameters()) + list(self.D.final_linear.parameters())

    def _g_train(self) -> list[nn.Parameter]:
        return list(self.G.convs.parameters())

    def _d_train(self) -> list[nn.Parameter]:
        return [p for block in list(self.D.convs)[1:] for p in block.parameters()]

    def param_groups(self) -> list[ParamGroup]:
        g_label, d_label = self._label_path()
        return [
            ParamGroup("G", self._g_train() + g_label, 1.0, "G"),
            ParamGroup("D", self._d_final() + self._d_train() + d_label, 1.0, "D"),
        ]

    @classmethod
    def schedule(cls, *, warmup_steps: int = 250, **_) -> list[Stage]:
        return [Stage("warmup", warmup_steps, phases=("D",), set_by="warmup_steps"), Stage("train", main=True)]

    def enter_stage(self, stage: Stage) -> None:
        self.G.requires_grad_(False)
        self.D.requires_grad_(False)
        g_label, d_label = self._label_path()
        train = self._d_final() + d_label
        if stage.name == "train":
            train += self._g_train() + self._d_train() + g_label
        for p in train:
            p.requires_grad_(True)

    # -- between steps -------------------------------------------------------------------------
    def after_step(self, end: StepEnd) -> None:
        stage = end.schedule.at(end.step).stage
        if "G" not in stage.phases:  # the official loop moves g_ema toward g in the warm-up too
            update_ema(self.G_ema, self.G, end.ema_decay)
        self.update_d_ema(end.ema_decay)
        warmup_end = next(s.end for s in end.schedule.spans if s.stage.name == "warmup")
        following = end.step + 1
        every = scaled_steps(self.fisher_every, end.schedule.scale)
        if following >= warmup_end and following < end.schedule.total_steps and (following - warmup_end) % every == 0:
            self.decide(end.images, end.labels, scaled_steps(self.fisher_samples, end.schedule.scale))
        elif following > warmup_end:
            self.hold()

    def held_fixed(self) -> list[nn.Parameter]:
        nets = {"G": self.G, "D": self.D}
        return [
            nets[layer.net].get_parameter(name)
            for layer in self.layers
            if (self.frozen(layer) | self.pruned(layer)).all()
            for name, _ in layer.tensors
        ]

    def extra_state(self) -> dict:
        return {
            "frozen_filters": {layer.key: int(self.frozen(layer).sum()) for layer in self.layers},
            "pruned_filters": {layer.key: int(self.pruned(layer).sum()) for layer in self.layers},
        }
