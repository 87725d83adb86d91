"""DCL: dual contrastive learning (Zhao et al. CVPR 2022, "A closer look at few-shot image generation").

There is no official code: yunqing-me/A-Closer-Look-at-FSIG holds only a README (and a bibtex).
Everything here follows the paper's description of the two losses, with its constants as the
fact sheet (``../shared/METHODS.md``, row ``dcl``) gives them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.method import METHODS, Batch, Fakes, Latents, StepContext, TargetSpec
from benchmark.nets import frozen_reference
from methods.finetune import FineTuneMethod


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor | None, tau: float) -> torch.Tensor:
    """InfoNCE, averaged over the anchors, on cosine similarities (features flattened, unit length).

    For anchor i: -log( exp(s(a_i, p_i) / tau) / (exp(s(a_i, p_i) / tau) + sum_k exp(s(a_i, n_k) / tau)) ).

    Args:
        anchor: (B, ...) anchors.
        positive: (B, ...) one positive per anchor.
        negatives: (K, ...) negatives shared by every anchor; None takes the other anchors'
            positives (p_j, j != i), the in-batch negatives of the G side.
        tau: the temperature.
    """
    a = F.normalize(anchor.flatten(1), dim=1)
    p = F.normalize(positive.flatten(1), dim=1)
    if negatives is None:  # logits[i, j] = s(a_i, p_j): the positive on the diagonal, the rest negatives
        return F.cross_entropy(a @ p.T / tau, torch.arange(len(a), device=a.device))
    n = F.normalize(negatives.flatten(1), dim=1)
    logits = torch.cat([(a * p).sum(1, keepdim=True), a @ n.T], 1) / tau
    return F.cross_entropy(logits, torch.zeros(len(a), dtype=torch.long, device=a.device))


@METHODS.register()
class DCL(FineTuneMethod):
    """Zhao et al. CVPR 2022, Dual Contrastive Learning: fine-tune all of G and D (as TransferGAN)
    with two InfoNCE losses that keep the target's multi-level features tied to the source's.

    No official code exists (yunqing-me/A-Closer-Look-at-FSIG is a README only), so this follows
    the paper's description:

    - **G side** (added to the G loss): for a batch of z_i, anchor G_t^l(z_i), the target G's
      features at layer l; positive G_s^l(z_i), a frozen source G's features for the same z_i
      (and the same noise maps and style mixing); negatives G_s^l(z_j), j != i. One InfoNCE per
      layer, averaged over the layers, weight ``lambda_g`` (the paper's lambda_1).
    - **D side** (added to the D loss, where D is the encoder that trains): anchor D_t(G_t(z_i)),
      positive D_t(G_s(z_i)), negatives D_t(x) for the real batch; D_t's features per block,
      averaged over the blocks, weight ``lambda_d`` (lambda_2).
    - Features are flattened and compared by cosine similarity over temperature ``tau``.

    Constants: lambda_1 = 2, lambda_2 = 0.5, tau = 0.07, from ../shared/METHODS.md, which marks
    them unverified: the paper's section 4 (and its implementation details) could not be read
    from this workplace, so they are not checked against the paper; every one is an option.
    Layers: the paper says "multi-level" features of G and D without a list reachable here, so
    the defaults take every synthesis block's output (4 px .. the top, ``return_block_outputs``)
    and every D block's output (``D.features``); ``g_layers`` / ``d_layers`` pick resolutions.
    The frozen source G is the source's EMA generator (the released model); G and D fine-tune
    under the suite's shared recipe, so with both weights 0 a step is TransferGAN's.

    Choices of ours where the paper (as reachable here) is silent, and why: the D-side loss trains
    D only (it is D's encoder that the loss shapes; the fakes of the D step carry no gradient to
    G), the G-side loss trains G only; features are compared without a projection head (none is
    described, and the source's features need no learned map to be comparable at step 0); when a
    loss is on, the fakes' noise maps are drawn from the training RNG, not the global one, so the
    source and target generators see the same maps (the positive pair differs only by the weights).

    Args:
        lambda_g: weight of the G-side loss (lambda_1).
        lambda_d: weight of the D-side loss (lambda_2).
        tau: InfoNCE temperature.
        g_layers: G block resolutions whose outputs enter the G-side loss (None: all).
        d_layers: D blocks (by input resolution) whose outputs enter the D-side loss (None: all).
    """

    name = "dcl"
    plot_style = ("#9467bd", ":", "d")
    summary = "fine-tune G and D + InfoNCE of target vs frozen source features in G and in D"

    def __init__(
        self,
        source,
        target: TargetSpec,
        lambda_g: float = 2.0,
        lambda_d: float = 0.5,
        tau: float = 0.07,
        g_layers: list[int] | None = None,
        d_layers: list[int] | None = None,
    ):
        super().__init__(source, target, pretrained=True)
        if lambda_g < 0 or lambda_d < 0 or tau <= 0:
            raise ValueError(f"need lambda_g >= 0, lambda_d >= 0 and tau > 0, got {lambda_g}, {lambda_d}, {tau}")
        resolutions = list(source.config.resolutions)
        for key, layers in (("g_layers", g_layers), ("d_layers", d_layers)):
            if layers is not None and (not layers or set(layers) - set(resolutions)):
                raise ValueError(f"{key} must be a non-empty list of resolutions in {resolutions}, got {layers}")
        self.lambda_g, self.lambda_d, self.tau = float(lambda_g), float(lambda_d), float(tau)
        self.g_layers = list(g_layers) if g_layers is not None else resolutions
        self.d_layers = list(d_layers) if d_layers is not None else resolutions
        self.G_source = frozen_reference(source.build_generator(target.label_classes, ema=True))

    # -- the step's hooks ------------------------------------------------------------------------
    def generate(self, latents: Latents, ctx: StepContext) -> Fakes:
        """The target's fakes and, for the phase's loss, the source's images or block outputs for the
        same latents and noise maps."""
        wanted = self.lambda_d if ctx.phase == "D" else self.lambda_g
        if not wanted:
            return super().generate(latents, ctx)
        device = latents.z.device
        noise = [n.to(device) for n in self.G.make_noise(len(latents.z), device="cpu", generator=ctx.generator)]
        kwargs = dict(latents.as_kwargs(), noise=noise, return_block_outputs=True)
        images, blocks = self.G(latents.z, **kwargs)
        with torch.no_grad():
            source_images, source_blocks = self.G_source(latents.z, **kwargs)
        features = {"source_images": source_images, "blocks": blocks, "source_blocks": source_blocks}
        return Fakes(images, latents, features)

    def g_regularizers(self, batch: Batch | None, fakes: Fakes, ctx: StepContext) -> dict[str, torch.Tensor]:
        if not self.lambda_g:
            return {}
        blocks = zip(self.G.config.resolutions, fakes.features["blocks"], fakes.features["source_blocks"])
        losses = [info_nce(t, s, None, self.tau) for r, t, s in blocks if r in self.g_layers]
        return {"dcl_g": self.lambda_g * torch.stack(losses).mean()}

    def d_regularizers(self, batch: Batch, fakes: Fakes, ctx: StepContext) -> dict[str, torch.Tensor]:
        if not self.lambda_d:
            return {}
        anchor = self.D.features(fakes.images)[1]
        positive = self.D.features(fakes.features["source_images"])[1]
        negatives = self.D.features(batch.images)[1]
        losses = [info_nce(anchor[r], positive[r], negatives[r], self.tau) for r in self.d_layers]
        return {"dcl_d": self.lambda_d * torch.stack(losses).mean()}
