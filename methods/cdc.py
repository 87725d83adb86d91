"""Cross-domain correspondence (CDC; Ojha et al. CVPR 2021, "Few-shot image generation via
cross-domain correspondence").

Official code: utkarshojha/few-shot-gan-adaptation ``train.py`` (the loop and the loss) and
``model.py`` (``Generator(return_feats=True)``, ``Patch_Discriminator``, ``Extra``), on
rosinality's StyleGAN2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.method import METHODS, Batch, Fakes, Latents, ParamGroup, StepContext, TargetSpec
from benchmark.nets import frozen_reference
from methods.cdc_parts import ANCHOR_EVERY, ANCHOR_JITTER, N_ANCHORS, AnchorLatents, PatchHead
from methods.finetune import FineTuneMethod


def similarity_distributions(features: list[torch.Tensor], layers: list[int]) -> torch.Tensor:
    """(B, B - 1): row i is the softmax over j != i of the cosine similarity between sample i's and
    sample j's flattened features at layer ``layers[i]`` (CDC train.py's ``dist_source`` /
    ``dist_target``, ``nn.CosineSimilarity`` then ``nn.Softmax(dim=1)``)."""
    batch = len(layers)
    rows = []
    for i, layer in enumerate(layers):
        flat = features[layer].flatten(1)
        others = torch.cat([flat[:i], flat[i + 1 :]])
        rows.append(F.cosine_similarity(flat[i : i + 1], others, dim=1))
    return torch.softmax(torch.stack(rows), dim=1).reshape(batch, batch - 1)


def distance_consistency(target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """KL(source || target) averaged over every element: ``nn.KLDivLoss()(log(target), source)`` with
    torch's old default reduction ``mean``, as CDC's train.py calls it (not ``batchmean``)."""
    return (source * (source.log() - target.log())).mean()


@METHODS.register()
class CDC(FineTuneMethod):
    """CDC: fine-tune all of G (mapping included) and D, with cross-domain distance consistency and
    anchor-based realism.

    Distance consistency (train.py, G step): ``feat_const_batch`` fresh z (4); per sample a random
    synthesis layer, ``randint(1, n_latent - 1)``, i.e. one of the StyledConv outputs 1 .. 12 of
    ``feat_list`` at 256 px (``StyleGAN2Generator.synthesis(return_layer_outputs=True)``); the
    cosine similarity of that sample's flattened feature to each other sample's at the same layer,
    softmaxed over the others, for the frozen source G (no gradient) and the trained G on the same
    z; the loss ``kl_weight * KLDivLoss(log p_target, p_source)`` with ``kl_wt`` 1000 and torch's
    element-mean reduction. Both generators draw fresh noise maps (``randomize_noise=True``) and no
    style mixing.

    Anchor-based realism: ``n_anchors`` z (``--n_train`` 10) are drawn once (``init_z``; kept in the
    checkpoint). On every ``anchor_every``-th step (``--subspace_freq`` 4; steps 0, 4, 8, ...) both
    the D and the G step draw their fakes as a random anchor + N(0, ``anchor_std``^2)
    (``get_subspace``, ``--subspace_std`` 0.1; no mixing) and score them, and the reals, with the
    image-level D. On the other steps the fakes use the shared mixing latents and every image is
    scored by the patch D: D's conv output at ``patch_resolution`` px (``Patch_Discriminator`` with
    ``--highp 1`` takes ``feat[0]``, the first 512-channel 32 x 32 map: ``block64.conv2`` of a 256 px
    D, ``StyleGAN2Discriminator.features(return_layer_outputs=True)``) through a new
    ``ConvLayer(C, 1, 3)`` (``Extra.new_conv[0]``, with its leaky-ReLU activation, as the original) to
    32 x 32 logits per image; the logistic losses average over all of them and R1 differentiates
    each image's mean (``benchmark.method.per_image``), as train.py does. The anchors and the patch
    head are ``methods.cdc_parts``'s, which RSSA shares. The patch head trains
    in D's optimizer at D's lr and betas (the original's ``e_optim`` has the same settings). The
    rest is the StyleGAN2 recipe (rosinality train.py: lazy R1, path length, EMA), which CDC's
    train.py runs unchanged.

    Defaults are train.py's argparse defaults; the iteration count (5,002; the README's ~1k for
    Babies/Sunglasses, 4-5k for artistic targets) and batch 4 belong to the suite (configs/cdc2021.yaml).

    Departures, named: random draws (latents, anchors, layer choices) come from the harness's
    seeded RNG rather than ``random``/``numpy``; the source G is the source's trained G (``g``), as
    CDC loads it; the patch D's forward computes D's later blocks too (unused: the same logits and
    gradients). ``patch_resolution`` defaults to resolution / 8 (32 px at 256 px, CDC's only
    resolution), so a smaller test or toy net reads the layer at the same relative depth.

    Args:
        kl_weight: weight of the distance consistency loss (``--kl_wt`` 1000); 0 turns it off.
        feat_const_batch: samples of the consistency loss (``--feat_const_batch`` 4).
        n_anchors: anchor latents (``--n_train`` 10); 0 turns anchor-based realism off altogether
            (no patch D: every step is image-level with the shared latents, as plain fine-tuning).
        anchor_every: period of the anchor steps (``--subspace_freq`` 4).
        anchor_std: std of the anchors' jitter (``--subspace_std`` 0.1).
        patch_resolution: size of the D feature the patch head scores (resolution / 8: 32 at 256 px).
    """

    name = "cdc"
    plot_style = ("#00a86b", "-", "*")
    summary = "fine-tune G and D + cross-domain distance consistency (KL) + anchors / patch-level D"
    unsupported_backbones = {
        "stylegan1": "CDC is defined on StyleGAN2: its consistency loss reads StyleGAN2's StyledConv outputs "
        "and its patch D a StyleGAN2 ResBlock conv (run it on the stylegan2 backbone)"
    }

    def __init__(
        self,
        source,
        target: TargetSpec,
        kl_weight: float = 1000.0,
        feat_const_batch: int = 4,
        n_anchors: int = N_ANCHORS,
        anchor_every: int = ANCHOR_EVERY,
        anchor_std: float = ANCHOR_JITTER,
        patch_resolution: int | None = None,
    ):
        super().__init__(source, target, pretrained=True)
        if kl_weight < 0 or anchor_std < 0:
            raise ValueError(f"kl_weight and anchor_std must be >= 0, got {kl_weight} and {anchor_std}")
        if feat_const_batch < 2 or n_anchors < 0 or anchor_every < 1:
            raise ValueError(
                f"feat_const_batch must be >= 2, n_anchors >= 0 and anchor_every >= 1, got {feat_const_batch}, "
                f"{n_anchors} and {anchor_every}"
            )
        self.kl_weight, self.feat_const_batch = float(kl_weight), feat_const_batch
        self.n_anchors, self.anchor_every, self.anchor_std = n_anchors, anchor_every, float(anchor_std)
        self.G_source = frozen_reference(source.build_generator(pretrained=True))
        self.anchors = self.patch_head = None
        if n_anchors:
            self.patch_head = PatchHead(self.D, patch_resolution)  # Extra.new_conv[0]
            self.anchors = AnchorLatents(n_anchors, self.style_dim, anchor_every, anchor_std)  # init_z, drawn once
        self.patch_resolution = patch_resolution

    def param_groups(self) -> list[ParamGroup]:
        groups = super().param_groups()
        if self.patch_head is not None:  # CDC's e_optim: Adam at D's lr and betas
            groups.append(ParamGroup("D", list(self.patch_head.parameters()), 1.0, "D patch head"))
        return groups

    def anchor_step(self, ctx: StepContext) -> bool:
        """Whether this step uses the anchors and the image-level D (train.py: ``i % subspace_freq == 0``)."""
        return self.anchors is not None and self.anchors.active(ctx.step)

    # -- the step's hooks ------------------------------------------------------------------------
    def sample_latents(self, batch: Batch | None, ctx: StepContext) -> Latents:
        if not self.anchor_step(ctx):
            return super().sample_latents(batch, ctx)
        n = batch.images.shape[0]
        labels = None
        if self.target.conditional:
            labels = torch.randint(self.target.n_classes, (n,), generator=ctx.generator)
            labels = labels.to(self.anchors.anchors.device)
        return self.anchors.draw(n, ctx.generator, labels)

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None, ctx: StepContext) -> torch.Tensor:
        """Image-level logits (B,) on anchor steps (and without anchors), else patch logits (B, r * r)."""
        if self.anchors is None or self.anchor_step(ctx):
            return super().discriminate(images, labels, ctx)
        return self.patch_head(self.D, ctx.augment(images))

    def g_regularizers(self, batch: Batch | None, fakes: Fakes, ctx: StepContext) -> dict[str, torch.Tensor]:
        if not self.kl_weight:
            return {}
        return {"cdc_kl": self.kl_weight * self.consistency_loss(ctx)}

    def consistency_loss(self, ctx: StepContext) -> torch.Tensor:
        """The unweighted distance consistency loss on fresh z (train.py's ``rel_loss / kl_wt``)."""
        g, n = ctx.generator, self.feat_const_batch
        device = next(self.G.parameters()).device
        z = torch.randn(n, self.style_dim, generator=g).to(device)
        # feat_ind = randint(1, n_latent - 1): StyledConv outputs 1 .. n_styles - 2 (1 .. 12 at 256 px)
        layers = torch.randint(1, self.n_style_blocks - 1, (n,), generator=g).tolist()
        labels = None
        if self.target.conditional:
            labels = torch.randint(self.target.n_classes, (n,), generator=g).to(device)
        with torch.no_grad():
            _, source_features = self.G_source(z, return_layer_outputs=True)
            source = similarity_distributions(source_features, layers)
        _, target_features = self.G(z, labels, return_layer_outputs=True)
        return distance_consistency(similarity_distributions(target_features, layers), source)
