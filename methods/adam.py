"""AdAM: adaptation-aware kernel modulation (Zhao et al., NeurIPS 2022), on the StyleGAN2 backbone.

Official code: yunqing-me/AdAM ``gan_training/models/model_adam.py`` (the KML layers),
``AdAM_importance_probing.py`` (probing and the Fisher) and ``AdAM_main_adaptation.py`` (the
filter-level decisions and the main adaptation).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from benchmark.method import METHODS, Method, ParamGroup, Stage, StepEnd, TargetSpec
from benchmark.nets.layers2 import (
    EqualConv2d,
    EqualLinear,
    FusedLeakyReLU,
    ModulatedConv2d,
    NoiseInjection,
    ResBlock,
    StyledConv,
    ToRGB,
)
from benchmark.schedule import scaled_steps
from benchmark.sources.base import EMA_START
from methods.importance import STYLEGAN1_REASON, DiscriminatorEMA, buffer_name, estimate_fisher, quantile_line

KML_INIT_STD = 1e-7  # model_adam.py: u_vector, v_vector = torch.randn(...) * 1e-7


class ConvModulation(nn.Module):
    """A conv kernel W (..., out, in, k, k) times 1 + outer(u, v) with u in R^{in k k}, v in R^{out}.

    The official ``torch.ger(u, v).view(1, out, in, k, k)`` lays the (in k k, out) product out in
    (out, in, k, k) order: a reshape, not a transpose, so entry f of the flat kernel is
    u[f // out] * v[f % out] and v[o] is not kernel o's own factor. Kept as it is.
    """

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        out = weight.shape[-4]
        self.u = nn.Parameter(
            torch.randn(weight[0].numel() // out if weight.ndim == 5 else weight[0].numel()) * KML_INIT_STD
        )
        self.v = nn.Parameter(torch.randn(out) * KML_INIT_STD)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * (torch.ones_like(weight) + torch.outer(self.u, self.v).view(weight.shape))


class LinearModulation(nn.Module):
    """A linear weight W (out, in) times 1 + outer(v, u), u in R^{in}, v in R^{out} (``KML_fc``)."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.u = nn.Parameter(torch.randn(weight.shape[1]) * KML_INIT_STD)
        self.v = nn.Parameter(torch.randn(weight.shape[0]) * KML_INIT_STD)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * (torch.ones_like(weight) + torch.outer(self.v, self.u).view(weight.shape))


class BiasShift(nn.Module):
    """A bias (or noise strength) plus ``b``, initialised to 0 (the official ``b_vector``)."""

    def __init__(self, bias: torch.Tensor):
        super().__init__()
        self.b = nn.Parameter(torch.zeros_like(bias))

    def forward(self, bias: torch.Tensor) -> torch.Tensor:
        return bias + self.b


KML_TYPES = (ConvModulation, LinearModulation, BiasShift)


def _modulate(module: nn.Module, name: str, kind: type[nn.Module]) -> nn.Module:
    kml = kind(getattr(module, name))
    parametrize.register_parametrization(module, name, kml)
    return kml


def add_kml(G: nn.Module, D: nn.Module) -> None:
    """KML on every layer the official model has it: G's mapping, modulated convs (kernel and style
    affine), noise strengths, activation and to_rgb biases; D's convs (all of ``convs``: from_rgb and
    the residual blocks) and their activation biases. D's final conv and linears have none."""
    for layer in list(G.style.modules()):
        if isinstance(layer, EqualLinear):
            _modulate(layer, "weight", LinearModulation)
            _modulate(layer, "bias", BiasShift)
    for module in list(G.modules()):
        if isinstance(module, ModulatedConv2d):
            _modulate(module, "weight", ConvModulation)
            _modulate(module.modulation, "weight", LinearModulation)
            _modulate(module.modulation, "bias", BiasShift)
        elif isinstance(module, NoiseInjection):
            _modulate(module, "weight", BiasShift)
        elif isinstance(module, StyledConv):
            _modulate(module.activate, "bias", BiasShift)
        elif isinstance(module, ToRGB):
            _modulate(module, "bias", BiasShift)
    for module in list(D.convs.modules()):
        if isinstance(module, EqualConv2d):
            _modulate(module, "weight", ConvModulation)
            if module.bias is not None:
                _modulate(module, "bias", BiasShift)
        elif isinstance(module, FusedLeakyReLU) and module.bias is not None:
            _modulate(module, "bias", BiasShift)


def _kml(module: nn.Module, name: str) -> nn.Module:
    return module.parametrizations[name][0]


def _original(module: nn.Module, name: str) -> nn.Parameter:
    return module.parametrizations[name].original


class FilterUnit:
    """One layer's filters, decided together: its KML vectors (scored), the KML entries zeroed where a
    filter fine-tunes, and the base entries frozen where it is modulated.

    Args:
        pool: the layers whose scores share one quantile line ("G conv", "G affine", "D conv").
        kml: role (u, v, b) -> KML parameter; score = mean(F_u) + F_v (+ F_b, then halved).
        base: (parameter, filter dim) pairs of the layer's own weights.
    """

    def __init__(self, key: str, pool: str, kml: dict[str, nn.Parameter], base: list[tuple[nn.Parameter, int]]):
        self.key, self.pool, self.kml, self.base = key, pool, kml, base

    @property
    def filters(self) -> int:
        return self.kml["v"].shape[0]


def filter_units(G: nn.Module, D: nn.Module) -> list[FilterUnit]:
    """The layers the official decisions cover: G's ``convs`` (each conv's kernel and its style affine;
    not conv1 or the to_rgbs) and D's residual blocks (conv1, conv2, skip; not from_rgb)."""
    units = []
    for i, layer in enumerate(G.convs):
        conv, affine = layer.conv, layer.conv.modulation
        units.append(
            FilterUnit(
                f"G.convs.{i}.conv", "G conv", {r: getattr(_kml(conv, "weight"), r) for r in "uv"},
                [(_original(conv, "weight"), 1)],
            )
        )  # fmt: skip
        units.append(
            FilterUnit(
                f"G.convs.{i}.conv.modulation", "G affine",
                {**{r: getattr(_kml(affine, "weight"), r) for r in "uv"}, "b": _kml(affine, "bias").b},
                [(_original(affine, "weight"), 0), (_original(affine, "bias"), 0)],
            )
        )  # fmt: skip
    for j, block in enumerate(D.convs):
        if not isinstance(block, ResBlock):
            continue
        for name in ("conv1", "conv2", "skip"):
            layer = getattr(block, name)
            conv = next(m for m in layer if isinstance(m, EqualConv2d))
            act = next((m for m in layer if isinstance(m, FusedLeakyReLU) and m.bias is not None), None)
            kml = {r: getattr(_kml(conv, "weight"), r) for r in "uv"}
            base = [(_original(conv, "weight"), 0)]
            if act is not None:
                kml["b"] = _kml(act, "bias").b
                base.append((_original(act, "bias"), 0))
            units.append(FilterUnit(f"D.convs.{j}.{name}", "D conv", kml, base))
    return units


def unit_scores(fisher: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-filter score from the Fisher of a unit's KML vectors (AdAM_main_adaptation.py)."""
    score = fisher["u"].mean() + fisher["v"]
    return (score + fisher["b"]) / 2 if "b" in fisher else score


@METHODS.register()
class AdAM(DiscriminatorEMA, Method):
    """Zhao et al. NeurIPS 2022, AdAM: probe which kernels matter for the target, modulate those, fine-tune the rest.

    Official code: yunqing-me/AdAM ``gan_training/models/model_adam.py``, ``AdAM_importance_probing.py``,
    ``AdAM_main_adaptation.py``, run by ``_bash_importance_probing.sh`` and ``_bash_main_adaptation.sh``.

    Kernel modulation (KML): every G ModulatedConv2d kernel W gets u in R^{in k k}, v in R^{out}
    (init N(0, 1e-7^2)) and is used as ``W * (1 + view(outer(u, v), W.shape))``, the official
    reshape kept (``ConvModulation``); style affines and the mapping network's linears get
    ``W * (1 + outer(v, u))`` and a bias shift b; noise strengths, activation and to_rgb biases a
    shift b; D's ``convs`` (from_rgb and the residual blocks) the conv KML and their activation
    biases a shift. D's final conv and linears have none.

    Stages. ``probe`` (``probe_steps``, official 500; before the budget, as the official probing is a
    run of its own): from the source, only G's KML and D's KML and final layers train; then the
    Fisher is estimated on the EMA networks (``g_ema``, ``d_ema``) over ``fisher_samples`` fixed
    noises (official 250 files x 4) and kept, with the decisions, in buffers (so in every
    checkpoint). ``adapt`` (the budget, official 1,500 Babies / 2,500 AFHQ-Cat at batch 4): G, its EMA
    and D restart from the source (fresh optimizers); per layer of G's ``convs`` and D's residual
    blocks, a filter whose score (``unit_scores``) is above ``np.percentile(scores of its pool,
    quantile)`` is modulated (its base kernel, affine row and D activation bias frozen, its KML
    trains), one at or below fine-tunes its base weights with its v (and b) zero and frozen. The
    mapping network's, conv1's and the to_rgbs' bases stay frozen and their KML trains; G's noise
    strengths and activation biases stay frozen (their gradients are zeroed officially), their KML
    shifts train. D trains its final layers, every KML and every conv but from_rgb (convs.0).

    Options and their sources:
        quantile: ``--fisher_quantile`` in percent; 50 for Babies, 75 for AFHQ-Cat
            (``_bash_main_adaptation.sh``); the suite sets it per target.
        probe_steps: ``--fisher_iter 500 --fisher_freq 500`` (``_bash_importance_probing.sh``).
        fisher_samples: ``--num_batch_fisher 250`` noise files of batch 4. A named budget that
            shortens the stages (``--budget smoke``) scales this count by the same factor.
        fisher_seed: seeds the fixed noises (the official ones are files in the repository).

    Departures: (1) the official ``KML_fc`` scales a style affine by 1/sqrt(out_dim) where the
    source's ``EqualLinear`` uses 1/sqrt(in_dim), which changes the source's images wherever a
    conv's input width is not 512; here the affine keeps the source's scale, so at zero modulation
    G is the source. (2) The official ``FusedLeakyReLU_kml`` adds its shift only while it requires
    grad (so ``g_ema``, frozen, ignores it); here the shift always applies. (3) The main stage's KML
    starts from the probing run's initial draw instead of a new one (both N(0, 1e-7^2)). (4) The
    official noises are files; here they come from ``fisher_seed`` (see ``methods.importance``).
    (5) With the reshape, zeroing v[o] does not leave kernel o unmodulated; "zero modulation" of a
    fine-tuned filter means what the official code does: its v (and b) entries are zero throughout.
    """

    name = "adam"
    summary = "probe kernel importance (Fisher of KML), modulate the important kernels, fine-tune the rest"
    plot_style = ("#17becf", "-", "P")
    unsupported_backbones = {"stylegan1": STYLEGAN1_REASON}

    def __init__(
        self,
        source,
        target: TargetSpec,
        quantile: float = 50.0,
        probe_steps: int = 500,
        fisher_samples: int = 1000,
        fisher_seed: int = 0,
    ):
        super().__init__(source, target)
        if not 0 <= quantile <= 100:
            raise ValueError(f"quantile is a percentile in [0, 100], got {quantile}")
        if probe_steps < 1 or fisher_samples < 1:
            raise ValueError(f"probe_steps and fisher_samples must be >= 1, got {probe_steps}, {fisher_samples}")
        self.quantile, self.probe_steps = float(quantile), probe_steps
        self.fisher_samples, self.fisher_seed = fisher_samples, fisher_seed
        self.G = source.build_generator(target.label_classes)
        self.D = source.build_discriminator(target.label_classes)
        ema_start = {n: getattr(p, EMA_START) for n, p in self.G.named_parameters() if hasattr(p, EMA_START)}
        add_kml(self.G, self.D)
        self.attach_d_ema()
        # The main stage restarts from the source: the weights as built (KML at its first draw), off the state dict.
        self._source_G = {k: v.detach().clone() for k, v in self.G.state_dict().items()}
        self._source_D = {k: v.detach().clone() for k, v in self.D.state_dict().items()}
        self._source_G_ema = dict(self._source_G)
        for k in self._source_G_ema:
            plain = k.replace("parametrizations.", "").replace(".original", "")
            if plain in ema_start:
                self._source_G_ema[k] = ema_start[plain].detach().clone()
        self.units = filter_units(self.G, self.D)
        self.importance = nn.Module()  # the Fisher of each unit's KML vectors and the decisions, checkpointed
        for unit in self.units:
            for role, p in unit.kml.items():
                self.importance.register_buffer(buffer_name(f"{unit.key}.fisher_{role}"), torch.zeros_like(p))
            self.importance.register_buffer(
                buffer_name(f"{unit.key}.modulated"), torch.ones(unit.filters, dtype=torch.bool)
            )
        self.register_buffer("probed", torch.zeros((), dtype=torch.bool))
        self.register_buffer("restarted", torch.zeros((), dtype=torch.bool))
        for unit in self.units:
            self._mask_gradients(unit)

    # -- the decisions ------------------------------------------------------------------------
    def fisher(self, unit: FilterUnit) -> dict[str, torch.Tensor]:
        return {r: getattr(self.importance, buffer_name(f"{unit.key}.fisher_{r}")) for r in unit.kml}

    def modulated(self, unit: FilterUnit) -> torch.Tensor:
        """Bool per filter: True where the filter is modulated (KML trains, base frozen)."""
        return getattr(self.importance, buffer_name(f"{unit.key}.modulated"))

    def decide(self) -> None:
        """The quantile rule on the saved Fisher: modulated = score > np.percentile(pool's scores, quantile)."""
        for pool in {u.pool for u in self.units}:
            units = [u for u in self.units if u.pool == pool]
            scores = [unit_scores(self.fisher(u)) for u in units]
            line = quantile_line(scores, self.quantile)
            for unit, score in zip(units, scores):
                self.modulated(unit).copy_(score.double() > line)

    def _mask_gradients(self, unit: FilterUnit) -> None:
        """Zero the gradient of a modulated filter's base entries and of a fine-tuned filter's v and b
        (the official code zeroes ``param.grad`` the same way; with Adam started afresh they never move)."""

        def mask(dim: int, keep_modulated: bool, ndim: int):
            def hook(grad):
                keep = self.modulated(unit) if keep_modulated else ~self.modulated(unit)
                shape = [1] * ndim
                shape[dim] = -1
                return grad * keep.to(grad.dtype).view(shape)

            return hook

        for p, dim in unit.base:
            p.register_hook(mask(dim, False, p.ndim))
        for role in ("v", "b"):
            if role in unit.kml:
                unit.kml[role].register_hook(mask(0, True, 1))

    # -- what trains ----------------------------------------------------------------------------
    def _kml_params(self, net: nn.Module) -> list[nn.Parameter]:
        return [p for m in net.modules() if isinstance(m, KML_TYPES) for p in m.parameters()]

    def _label_path(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        g = list(self.G.class_embed.parameters()) if hasattr(self.G, "class_embed") else []
        d = list(self.D.class_projection.parameters()) if hasattr(self.D, "class_projection") else []
        return g, d

    def _d_final(self) -> list[nn.Parameter]:
        return list(self.D.final_conv.parameters()) + list(self.D.final_linear.parameters())

    def _g_base(self) -> list[nn.Parameter]:
        return [p for u in self.units if u.key.startswith("G.") for p, _ in u.base]

    def _d_base(self) -> list[nn.Parameter]:
        kml = {id(p) for p in self._kml_params(self.D)}
        return [p for block in list(self.D.convs)[1:] for p in block.parameters() if id(p) not in kml]

    def param_groups(self) -> list[ParamGroup]:
        g_label, d_label = self._label_path()
        return [
            ParamGroup("G", self._kml_params(self.G) + self._g_base() + g_label, 1.0, "G"),
            ParamGroup("D", self._kml_params(self.D) + self._d_final() + self._d_base() + d_label, 1.0, "D"),
        ]

    @classmethod
    def schedule(cls, *, probe_steps: int = 500, **_) -> list[Stage]:
        return [
            Stage("probe", probe_steps, extends_budget=True, set_by="probe_steps"),
            Stage("adapt", main=True, reset_optimizers=True),
        ]

    def enter_stage(self, stage: Stage) -> None:
        self.G.requires_grad_(False)
        self.D.requires_grad_(False)
        g_label, d_label = self._label_path()
        train = self._kml_params(self.G) + self._kml_params(self.D) + self._d_final() + g_label + d_label
        if stage.name == "adapt":
            if not self.restarted:
                self.restart()
            train += self._g_base() + self._d_base()
        for p in train:
            p.requires_grad_(True)
        if stage.name == "adapt":  # a layer with no filter of a kind: its masked tensors get no gradient at all
            for unit in self.units:
                modulated = self.modulated(unit)
                if modulated.all():
                    for p, _ in unit.base:
                        p.requires_grad_(False)
                if not modulated.any():
                    for p in unit.kml.values():
                        p.requires_grad_(False)

    @torch.no_grad()
    def restart(self) -> None:
        """The main adaptation: G, G's EMA and D back to the source, the fine-tuned filters' v and b zeroed."""
        if not self.probed:
            raise RuntimeError("adam: the main stage needs the probing stage's Fisher")
        device = next(self.G.parameters()).device
        self.G.load_state_dict({k: v.to(device) for k, v in self._source_G.items()})
        self.D.load_state_dict({k: v.to(device) for k, v in self._source_D.items()})
        if hasattr(self, "G_ema"):
            self.G_ema.load_state_dict({k: v.to(device) for k, v in self._source_G_ema.items()})
        ema = dict(self.G_ema.named_parameters()) if hasattr(self, "G_ema") else {}
        g_names = {id(p): n for n, p in self.G.named_parameters()}
        for unit in self.units:
            fine_tuned = ~self.modulated(unit)
            for role in ("v", "b"):
                if role in unit.kml:
                    unit.kml[role][fine_tuned] = 0
                    name = g_names.get(id(unit.kml[role]))
                    if name in ema:
                        ema[name][fine_tuned] = 0
        self.restarted.fill_(True)

    # -- between steps -------------------------------------------------------------------------
    def after_step(self, end: StepEnd) -> None:
        span = end.schedule.at(end.step)
        if span.stage.name != "probe":
            return
        self.update_d_ema(end.ema_decay)
        if end.step == span.end - 1:  # probing is over: the Fisher on the EMA networks, then the decisions
            self.probe(end.images, end.labels, scaled_steps(self.fisher_samples, end.schedule.scale))

    def probe(self, images: torch.Tensor, labels: torch.Tensor | None, samples: int) -> None:
        g_names = {id(p): n for n, p in self.G.named_parameters()}
        d_names = {id(p): n for n, p in self.D.named_parameters()}
        g_ema, d_ema = dict(self.G_ema.named_parameters()), dict(self.D_ema.named_parameters())
        g_params, d_params = {}, {}
        for unit in self.units:
            for role, p in unit.kml.items():
                if unit.key.startswith("G."):
                    g_params[(unit.key, role)] = g_ema[g_names[id(p)]]
                else:
                    d_params[(unit.key, role)] = d_ema[d_names[id(p)]]
        g_fisher, d_fisher = estimate_fisher(
            self.G_ema, self.D_ema, g_params, d_params, images, labels, self.target.label_classes,
            samples, self.fisher_seed,
        )  # fmt: skip
        for (key, role), value in {**g_fisher, **d_fisher}.items():
            getattr(self.importance, buffer_name(f"{key}.fisher_{role}")).copy_(value)
        self.decide()
        self.probed.fill_(True)

    def extra_state(self) -> dict:
        return {
            "modulated_filters": {u.key: int(self.modulated(u).sum()) for u in self.units},
            "filters": {u.key: u.filters for u in self.units},
        }
