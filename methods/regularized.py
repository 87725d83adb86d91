"""Fine-tuning pulled toward the source: L2-SP (weights) and feature distillation (D features).

Both train every parameter of G and D from the source, like TransferGAN, and add one penalty
that keeps the target near the source. FreezeD (sangwoomo/FreezeD stylegan/finetune.py) ran both
as its regularised baselines; their weights there default to 0 (off), so the defaults below are
our choice, argued in each docstring. The source networks are kept as frozen references
(``frozen_reference``): they follow the method's device and stay out of its checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.nets import frozen_reference
from methods.base import METHODS, Batch, Latents, StepContext, TargetSpec
from methods.finetune import FineTuneMethod


def l2sp_penalty(net: nn.Module, reference: nn.Module) -> torch.Tensor:
    """Sum over tensors of mean((theta - theta_source)^2), pairing ``net``'s parameters with the reference by name.

    FreezeD's ``l2_reg`` zips ``parameters()`` of source and target, which silently misaligns
    as soon as the target has a parameter the source lacks (the label path); pairing by name
    penalises exactly the weights that came from the source.
    """
    anchors = dict(reference.named_buffers())
    terms = [F.mse_loss(p, anchors[name]) for name, p in net.named_parameters() if name in anchors]
    return torch.stack(terms).sum()


@METHODS.register()
class L2SP(FineTuneMethod):
    """Li et al. 2018, L2-SP: fine-tune all of G and D with an L2 pull toward the source weights.

    Official GAN version: FreezeD stylegan/finetune.py ``l2_reg`` (lines 60-68), added as
    ``lambda_l2_G * l2_reg(G_source, G_target)`` to the G loss (``backward_G``) and
    ``lambda_l2_D * l2_reg(D_source, D_target)`` to the D loss (``backward_D``). The penalty is a
    sum over tensors of ``F.mse_loss``, the per-tensor mean of the squared deviation; the weights
    are the stored ``weight_orig`` (before the equalized-lr scale), which are ~N(0, 1) in every
    layer, so each tensor contributes its squared drift relative to a unit-scale weight.

    Defaults: FreezeD's are 0 (the regulariser off). We use 10 for both. Because each tensor's
    term is a mean, its gradient on one weight is 2 * lambda * drift / numel: a weight of a
    16 x 16 x 3 x 3 toy conv feels 1/2304 of lambda, and the pull only competes with the
    adversarial gradient (about 1e-3 per weight, measured on the toy suite) once lambda is in
    the tens. lambda = 1 changed nothing measurable over 300 toy steps; 10 roughly halves the
    drift from the source that plain fine-tuning reaches while D and G still move (see
    ``calibration`` in the method's test module). Raise it at 256 px, where tensors are up to
    1000x larger and the per-weight pull correspondingly weaker.

    Args:
        lambda_g: weight of G's penalty (FreezeD ``--lambda_l2_G``).
        lambda_d: weight of D's penalty (FreezeD ``--lambda_l2_D``).
    """

    name = "l2sp"
    summary = "fine-tune all of G and D + L2 pull toward the source weights"

    def __init__(self, source, target: TargetSpec, lambda_g: float = 10.0, lambda_d: float = 10.0):
        super().__init__(source, target, pretrained=True)
        if lambda_g < 0 or lambda_d < 0:
            raise ValueError(f"lambda_g and lambda_d must be >= 0, got {lambda_g} and {lambda_d}")
        self.lambda_g, self.lambda_d = float(lambda_g), float(lambda_d)
        self.G_source = frozen_reference(source.build_generator(pretrained=True))
        self.D_source = frozen_reference(source.build_discriminator(pretrained=True))

    def g_regularizers(self, fake: torch.Tensor, latents: Latents, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {"l2sp_g": self.lambda_g * l2sp_penalty(self.G, self.G_source)} if self.lambda_g else {}

    def d_regularizers(self, batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {"l2sp_d": self.lambda_d * l2sp_penalty(self.D, self.D_source)} if self.lambda_d else {}


@METHODS.register()
class FeatureDistillation(FineTuneMethod):
    """Feature distillation (FreezeD's "FD" baseline): fine-tune G and D, keep D's features near the source D's.

    Official code: FreezeD stylegan/finetune.py ``FM_reg`` (lines 71-75) and ``backward_D``
    (lines 302-305): on the real batch of the D step, ``lambda_FM * F.mse_loss(D_target feature,
    D_source feature)``, with both features read at ``feature_loc`` from a frozen copy of the
    source D; nothing is added to the G loss. In rosinality's D (FreezeD stylegan/model.py,
    ``Discriminator.forward``) ``feature_loc = i`` returns the output of the block that runs at
    the i-th step from the output side (i = 0 is the final 4x4 block), i.e. the block whose input
    is 4 * 2**i px at any resolution; the default 3 is the block whose input is 32 px (output
    16 px), the last of the blocks that FreezeD (same ``feature_loc``) freezes.

    Default weight: FreezeD's ``--lambda_FM`` defaults to 0 (off); we use 1. The feature MSE is
    averaged over elements, so its gradient does not shrink with layer size the way L2-SP's per
    weight does, and at weight 1 a relative feature drift r costs r^2 times the source features'
    mean square (about 0.3 on the toy source's 32 px block), i.e. a comparable size to the D loss
    (2 log 2 at equilibrium) once the features have moved by their own scale.

    Args:
        lambda_fm: weight of the distillation loss (FreezeD ``--lambda_FM``).
        feature_loc: which D block's output is distilled, counted from the output side
            (0 = the 4 px block; FreezeD's default 3 = the block whose input is 32 px).
    """

    name = "fd"
    summary = "fine-tune all of G and D + match D's features on reals to the frozen source D's"

    def __init__(self, source, target: TargetSpec, lambda_fm: float = 1.0, feature_loc: int = 3):
        super().__init__(source, target, pretrained=True)
        n_blocks = len(self.D.config.resolutions)
        if not 0 <= feature_loc < n_blocks:
            raise ValueError(f"feature_loc must be in 0..{n_blocks - 1} for this backbone, got {feature_loc}")
        if lambda_fm < 0:
            raise ValueError(f"lambda_fm must be >= 0, got {lambda_fm}")
        self.lambda_fm = float(lambda_fm)
        self.feature_resolution = 4 * 2**feature_loc  # D parts are keyed by their input resolution
        self.D_source = frozen_reference(source.build_discriminator(pretrained=True))

    def distillation_loss(self, images: torch.Tensor) -> torch.Tensor:
        """MSE between the target D's and the frozen source D's features of ``images`` (unweighted)."""
        target_features = self.D.features(images)[1][self.feature_resolution]
        with torch.no_grad():
            source_features = self.D_source.features(images)[1][self.feature_resolution]
        return F.mse_loss(target_features, source_features)

    def d_regularizers(self, batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {"fd": self.lambda_fm * self.distillation_loss(batch.images)} if self.lambda_fm else {}
