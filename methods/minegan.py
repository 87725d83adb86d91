"""MineGAN (Wang et al. 2020): mine the source's latent space with a small network, then fine-tune.

A miner M maps the input noise u to the latent z the pretrained generator receives, so that the
frozen generator's samples move towards the target; afterwards miner and generator train
together. With several sources, one miner per source and a selector that learns how often each
source should be sampled; with a conditional target, a class miner adds a class-dependent
embedding to the mined latent.

Read against the official code (yaxingwang/MineGAN):

- ``styleGAN/model.py`` ``Miner``: ``nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 512)`` with
  PyTorch's default initialisation (not identity-like), applied to each latent of a style-mixing
  pair before the mapping network.
- ``styleGAN/finetune.py``: ``--stage1 100``: for the first 100 iterations the G step trains the
  miner only (``requires_grad(G_target, False)``), D trains throughout; then miner, synthesis and
  mapping (lr x 0.01) train together. The miner learns at the full lr. The StyleGAN2 code
  (``styleGANv2/train.py``, ``step_dis = 1000``) uses 1000 iterations.
- Multi-source, ``MNISTtf/MNISTtf_old/conditional_one_hot/miner/cgan_super_g_d_two_class_unbalance_one_D*.py``
  (``Super_G_D_loss``): every source generates from its own mined latent; per sample, the
  source whose image D scores highest (``pseudo_label = argmax``) is the fake both the D loss and
  the G loss use; a selector learns to predict those argmax labels by cross-entropy and picks
  the source at test time.
- Conditional, ``BigGAN.py`` ``Minor`` and ``G_D.forward``: from the same u, one branch mines z
  and a second branch produces the class embedding that replaces ``G.shared(y)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.method import METHODS, Fakes, Latents, Method, Resource, Stage, StepContext, TargetSpec
from benchmark.nets import BackboneGenerator, set_trainable


class Miner(nn.Module):
    """u -> z: Linear-ReLU-Linear at the latent width, PyTorch's default init (official ``Miner``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.transform(u)


class ClassMiner(nn.Module):
    """(u, class) -> an embedding added to the mined z, where the shared label path adds its own.

    The miner's Linear-ReLU-Linear with the class as a second input: the first layer acts on
    concat(u, one_hot(y)), written as a Linear on u plus a per-class embedding of the hidden
    layer. The class part starts at zero, so at step 0 every class gets the same mined
    distribution (as the shared label path's zero-initialised embedding does).

    Args:
        dim: the latent width.
        n_classes: the target's classes.
    """

    def __init__(self, dim: int, n_classes: int):
        super().__init__()
        self.latent = nn.Linear(dim, dim)
        self.label = nn.Embedding(n_classes, dim)
        nn.init.zeros_(self.label.weight)
        self.out = nn.Linear(dim, dim)

    def forward(self, u: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.latent(u) + self.label(labels)))


class MinedGenerator(nn.Module):
    """The sampling path miner(s) -> StyleGAN: what the harness trains, averages and samples.

    Args:
        backbone: an unconditional generator with the source's weights.
        n_classes: 0 for an unconditional target; else the class miner provides the label path.
    """

    def __init__(self, backbone: BackboneGenerator, n_classes: int = 0):
        super().__init__()
        dim = backbone.config.style_dim
        self.miner = Miner(dim)
        self.class_miner = ClassMiner(dim, n_classes) if n_classes else None
        self.backbone = backbone

    def mine(self, u: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        z = self.miner(u)
        if self.class_miner is not None:
            if labels is None:
                raise ValueError("a conditional MineGAN generator needs labels")
            z = z + self.class_miner(u, labels)
        return z

    def forward(self, z, labels=None, noise=None, mix_z=None, crossover=None) -> torch.Tensor:
        """Images from input noise ``z``; a style-mixing ``mix_z`` is mined too (the official miner maps both)."""
        mixed = None if mix_z is None else self.mine(mix_z, labels)
        return self.backbone(self.mine(z, labels), noise=noise, mix_z=mixed, crossover=crossover)

    def styles(self, z, labels=None, mix_z=None, crossover=None) -> torch.Tensor:
        """The backbone's per-layer styles of the mined latents (what the path-length penalty differentiates)."""
        mixed = None if mix_z is None else self.mine(mix_z, labels)
        return self.backbone.styles(self.mine(z, labels), mix_z=mixed, crossover=crossover)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        return self.backbone.synthesis(ws)


class Selector(nn.Module):
    """Categorical p over sources: the mean, over the last ``window`` batches, of how often each
    source's image got the highest D score. Kept in buffers so it is checkpointed and resumed.

    Args:
        n_sources: number of sources.
        window: batches in the running mean (1000, METHODS.md).
    """

    def __init__(self, n_sources: int, window: int):
        super().__init__()
        self.register_buffer("history", torch.zeros(window, n_sources))
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))

    @property
    def probabilities(self) -> torch.Tensor:
        """p (uniform before the first update)."""
        filled = min(int(self.batches), len(self.history))
        if filled == 0:
            return torch.full_like(self.history[0], 1.0 / self.history.shape[1])
        return self.history[:filled].mean(0)

    @torch.no_grad()
    def update(self, chosen: torch.Tensor) -> None:
        """Record one batch of argmax source indices."""
        counts = torch.bincount(chosen, minlength=self.history.shape[1]).to(self.history)
        self.history[int(self.batches) % len(self.history)] = counts / len(chosen)
        self.batches += 1

    def draw(self, n: int) -> torch.Tensor:
        """n source indices drawn from p with the global RNG (seeded and checkpointed by the harness)."""
        return torch.multinomial(self.probabilities, n, replacement=True)


class MultiSourceGenerator(nn.Module):
    """One mined generator per source; each sample comes from a source drawn from the selector's p."""

    def __init__(self, generators: list[MinedGenerator], window: int):
        super().__init__()
        self.sources = nn.ModuleList(generators)
        self.selector = Selector(len(generators), window)

    def forward(self, z, labels=None, noise=None, mix_z=None, crossover=None) -> torch.Tensor:
        choice = self.selector.draw(len(z)).to(z.device)
        images = None
        for i, generator in enumerate(self.sources):
            rows = (choice == i).nonzero().squeeze(1)
            if len(rows) == 0:
                continue
            part = generator(
                z[rows],
                None if labels is None else labels[rows],
                None if noise is None else [n[rows] for n in noise],
                None if mix_z is None else mix_z[rows],
                crossover,
            )
            if images is None:
                images = part.new_zeros((len(z), *part.shape[1:]))
            images[rows] = part
        return images


@METHODS.register()
class MineGAN(Method):
    """Wang et al. 2020, MineGAN: a miner-only stage with G frozen, then miner + G + D.

    Trainable: stage ``mine`` (``miner_steps``): the miner(s) and D; stage ``finetune``: the
    miner(s), every generator (mapping at lr x 0.01) and D. No extra loss: the suite's
    adversarial recipe (non-saturating logistic loss, R1 on reals, style mixing).

    Defaults and sources: ``miner_steps=100`` (official StyleGAN v1 ``finetune.py --stage1``;
    the StyleGAN2 code uses 1000); miner architecture and init as the official ``Miner``;
    ``selector_window=1000`` (METHODS.md). ``finetune=False`` is the paper's "MineGAN w/o FT"
    row (mining only, G frozen throughout), registered as ``minegan-noft``.

    Multi-source (``sources``): D comes from ``source``, one miner per listed source's generator.
    Each step draws an independent u_i per source (same labels and crossover); per sample, the
    source with the highest D score gives the fake that both the D loss and the G loss use
    (max_i D(G_i(M_i(u_i))), official ``Super_G_D_loss``), and its index updates the selector.
    The selector is the paper's: a categorical p, the mean over the last ``selector_window``
    batches of the share of samples where source i scored highest (Wang et al. 2020); sampling
    draws a source from p, then the image from that source's miner and generator. The official
    TensorFlow prototype (MNISTtf_old) differs: it trains a selector *head* on the miner's hidden
    layer by cross-entropy on those argmax labels, only after iteration 1,000, and picks the
    source per sample from its input; a categorical p without input is what that head learns
    when it ignores its input (the cross-entropy minimiser is the labels' frequency).

    Conditional targets: MineGAN's conditional miner (BigGAN ``Minor``) produces the class
    embedding from u in place of the generator's own. Here G's label path is the embedding added
    to z before the mapping network, so the backbone is built without it and a ``ClassMiner``
    adds a (u, class)-dependent embedding at that point; it trains in both stages, so the
    frozen source is steered per class. D uses the shared label path (projection head).

    Differences from the official code: the harness averages the whole sampling path (miner
    included) for evaluation, where the official code averages G only and samples through the
    live miner; ``finetune.py``'s ``Miner_semantic`` (a noise-map miner) never receives a
    gradient there (``backward_G`` does not pass it) and is left out; the MNIST multi-source
    code used WGAN-GP, here the suite's shared loss.

    Args:
        miner_steps: length of the miner-only stage (0 fine-tunes from the start).
        finetune: after mining, train the generator(s) too; False mines for the whole budget.
        sources: loaded sources whose generators are mined (a suite lists source names, which the
            harness loads: ``Resource.SOURCES``); None or one source is the single-source method.
        selector_window: batches in the selector's running mean.
    """

    name = "minegan"
    plot_style = ("#bcbd22", "-", "<")
    summary = "mine the source latent space with a miner (G frozen), then fine-tune miner + G"
    resources = {"sources": Resource.SOURCES}

    def __init__(
        self,
        source,
        target: TargetSpec,
        miner_steps: int = 100,
        sources: list | None = None,
        selector_window: int = 1000,
        finetune: bool = True,
    ):
        super().__init__(source, target)
        if miner_steps < 0:
            raise ValueError(f"miner_steps must be >= 0, got {miner_steps}")
        if selector_window < 1:
            raise ValueError(f"selector_window must be >= 1, got {selector_window}")
        generators = list(sources) if sources else [source]
        for s in generators:
            if not hasattr(s, "build_generator"):
                raise ValueError(f"sources must be loaded Source objects (the harness loads names), got {s!r}")
            if s.config != source.config:
                raise ValueError(f"source {s.name!r} has a different backbone from {source.name!r}")
        self.miner_steps, self.finetune = miner_steps, finetune
        self.source_names = [s.name for s in generators]
        mined = [MinedGenerator(s.build_generator(), target.label_classes) for s in generators]
        self.G = mined[0] if len(mined) == 1 else MultiSourceGenerator(mined, selector_window)
        self.D = source.build_discriminator(target.label_classes)
        # A multi-source batch mixes generators sample by sample: no one (ws -> image) map to regularize.
        self.path_length_regularization = len(mined) == 1

    @property
    def multi_source(self) -> bool:
        return isinstance(self.G, MultiSourceGenerator)

    @classmethod
    def schedule(cls, *, miner_steps: int, finetune: bool, **_) -> list[Stage]:
        if not finetune:
            return [Stage("mine", main=True)]
        return [Stage("mine", miner_steps, set_by="miner_steps"), Stage("finetune", main=True)]

    def enter_stage(self, stage: Stage) -> None:
        set_trainable(self.G, True)
        set_trainable(self.D, True)
        if stage.name == "mine":
            for m in self.G.modules():
                if isinstance(m, BackboneGenerator):
                    set_trainable(m, False)

    def extra_state(self) -> dict:
        if not self.multi_source:
            return {}
        selector = self.G.selector
        return {
            "selector": {
                "sources": self.source_names,
                "p": selector.probabilities.tolist(),
                "window": len(selector.history),
                "batches": int(selector.batches),
            }
        }

    # -- the multi-source hooks: each source's fakes, and per sample the one D scores highest ------
    def generate(self, latents: Latents, ctx: StepContext) -> Fakes:
        """The harness's latents for the first source, fresh u_i (same labels, crossover) for the others."""
        if not self.multi_source:
            return super().generate(latents, ctx)

        def fresh(like: torch.Tensor) -> torch.Tensor:
            return torch.randn(like.shape, generator=ctx.generator).to(like.device)

        mix = latents.mix_z
        per_source = [latents] + [
            Latents(fresh(latents.z), latents.labels, None if mix is None else fresh(mix), latents.crossover)
            for _ in self.G.sources[1:]
        ]
        images = [g(lat.z, **lat.as_kwargs()) for g, lat in zip(self.G.sources, per_source)]
        return Fakes(None, latents, {"per_source": images})

    def fake_logits(self, fakes: Fakes, ctx: StepContext) -> torch.Tensor:
        """max_i D(G_i(M_i(u_i))) per sample; in the G phase its argmax updates the selector."""
        if not self.multi_source:
            return super().fake_logits(fakes, ctx)
        labels = fakes.latents.labels
        logits = torch.stack([self.discriminate(f, labels, ctx) for f in fakes.features["per_source"]], 1)
        if ctx.phase == "D":
            return logits.amax(1)
        best, chosen = logits.max(1)
        self.G.selector.update(chosen)
        return best


@METHODS.register()
class MineGANNoFT(MineGAN):
    """MineGAN without fine-tuning (the paper's "MineGAN w/o FT" row): the miner(s) and D train, G stays frozen.

    Args: as ``MineGAN``; ``finetune`` defaults to False.
    """

    name = "minegan-noft"
    plot_style = ("#6e6e00", ":", "<")  # a darker minegan: its miner alone
    summary = "MineGAN's miner only, G frozen throughout (the paper's 'w/o FT' row)"

    def __init__(
        self,
        source,
        target: TargetSpec,
        miner_steps: int = 100,
        sources: list | None = None,
        selector_window: int = 1000,
        finetune: bool = False,
    ):
        super().__init__(source, target, miner_steps, sources, selector_window, finetune)
