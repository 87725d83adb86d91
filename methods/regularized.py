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

from benchmark.method import METHODS, Batch, Fakes, StepContext, TargetSpec
from benchmark.nets import frozen_reference
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
    sum over tensors of ``F.mse_loss``, the per-tensor mean of the squared deviation, on the
    stored parameters; the conv and linear ``weight_orig`` (before the equalized-lr scale) start
    ~N(0, 1) in every layer, so each contributes its squared drift relative to a unit-scale weight.

    Defaults: FreezeD's are 0 (the regulariser off); we use 10 for both, chosen on the toy suite
    (digit 7, 10 shots, 300 steps, seed 0) so that the pull is clearly active without freezing:
    plain fine-tuning ends with penalties P_G = 0.080 and P_D = 0.014 and its G conv weights
    4.3% (rms, relative) away from the source; lambda = 1, 10, 100 give P_G = 0.018, 0.0051,
    0.00096, P_D = 0.0096, 0.0039, 0.00048 and a conv drift of 3.6%, 2.0%, 0.9%. At 10 the conv
    drift is halved while the adversarial losses stay at fine-tuning's values, and the weighted
    penalty (about 0.05) is a few percent of the G loss. The value that matters is the gradient,
    2 * lambda * drift / numel per weight: at 256 px the largest tensors are about 64x the toy's,
    so the same lambda pulls their weights correspondingly less.

    Args:
        lambda_g: weight of G's penalty (FreezeD ``--lambda_l2_G``).
        lambda_d: weight of D's penalty (FreezeD ``--lambda_l2_D``).
    """

    name = "l2sp"
    plot_style = ("#17becf", "-", "h")
    summary = "fine-tune all of G and D + L2 pull toward the source weights"

    def __init__(self, source, target: TargetSpec, lambda_g: float = 10.0, lambda_d: float = 10.0):
        super().__init__(source, target, pretrained=True)
        if lambda_g < 0 or lambda_d < 0:
            raise ValueError(f"lambda_g and lambda_d must be >= 0, got {lambda_g} and {lambda_d}")
        self.lambda_g, self.lambda_d = float(lambda_g), float(lambda_d)
        self.G_source = frozen_reference(source.build_generator(pretrained=True))
        self.D_source = frozen_reference(source.build_discriminator(pretrained=True))

    def g_regularizers(self, batch: Batch, fakes: Fakes, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {"l2sp_g": self.lambda_g * l2sp_penalty(self.G, self.G_source)} if self.lambda_g else {}

    def d_regularizers(self, batch: Batch, fakes: Fakes, ctx: StepContext) -> dict[str, torch.Tensor]:
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

    Default weight: FreezeD's ``--lambda_FM`` defaults to 0 (off); we use 1, by the same toy
    calibration as L2-SP (digit 7, 10 shots, 300 steps): plain fine-tuning moves the 32 px block's
    features on the target reals by an MSE of 0.0054 (8% of the source features' mean square,
    0.069); lambda = 0.1, 1, 10, 100 leave 0.0037, 0.0018, 0.0004, 0.00013. At 1 the drift's rms
    falls by about 1.7x, a soft version of FreezeD's hard freeze of the same blocks, while the
    weighted loss (about 0.002) stays far below the D loss, so the adversarial game is unchanged.
    The MSE is a mean over feature elements, so unlike L2-SP its scale does not depend on the
    resolution.

    Args:
        lambda_fm: weight of the distillation loss (FreezeD ``--lambda_FM``).
        feature_loc: which D block's output is distilled, counted from the output side
            (0 = the 4 px block; FreezeD's default 3 = the block whose input is 32 px).
    """

    name = "fd"
    plot_style = ("#7f7f7f", "--", "p")
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

    def d_regularizers(self, batch: Batch, fakes: Fakes, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {"fd": self.lambda_fm * self.distillation_loss(batch.images)} if self.lambda_fm else {}


@METHODS.register()
class EWC(FineTuneMethod):
    """Li et al. NeurIPS 2020, "Few-shot image generation with elastic weight consolidation": fine-tune
    all of G and D, and add ``lambda * sum_i F_i (theta_i - theta_S,i)^2`` over G's weights to the G
    loss, where theta_S are the source G's weights and F_i their Fisher information. There is no
    official code.

    The Fisher information (the paper's Eq. for F, EWC's diagonal approximation): estimated once,
    before training, on images generated by the source G and scored by the frozen source D, as
    the paper says; the log-likelihood of a generated image is its binary cross-entropy as "real"
    under the source D, log sigmoid(D_S(G_S(z))), and F_i = E_z[(d log sigmoid(D_S(G_S(z))) /
    d theta_i)^2], the mean of per-sample squared gradients (the empirical Fisher) over
    ``fisher_samples`` z (1,000, our choice: the paper gives no count; AdAM's importance probing
    also averages over 1,000). The draws come from their own generator seeded with
    ``fisher_seed`` (z and the noise maps), so the estimate is the same in every run and never
    touches the training RNG. F is computed when training starts (``enter_stage``, on the training
    device, with G still at the source's weights) and kept in the checkpoint, so a resumed run
    reads it instead of recomputing.

    lambda: 5e8, the value METHODS.md gives for the paper ("lambda ~ 5e8", marked there as not yet
    verified against the paper's text; the copies we could reach here stop at the abstract).
    Sony's NNabla port (nnabla-examples image-generation/stylegan2-ewc) is not followed: it sums
    raw, not squared, gradients and uses lambda 100 with a per-tensor mean.

    The penalty covers the G parameters that came from the source (paired by name, as L2-SP; a
    conditional target's new label path is free). D trains as in fine-tuning.

    Args:
        lambda_ewc: the penalty's weight (5e8).
        fisher_samples: generated images the Fisher information is averaged over (1,000).
        fisher_seed: seed of the estimate's latents and noise maps.
    """

    name = "ewc"
    plot_style = ("#4b0082", "--", "H")
    summary = "fine-tune all of G and D + Fisher-weighted L2 pull of G toward the source (EWC)"

    def __init__(
        self,
        source,
        target: TargetSpec,
        lambda_ewc: float = 5e8,
        fisher_samples: int = 1000,
        fisher_seed: int = 0,
    ):
        super().__init__(source, target, pretrained=True)
        if lambda_ewc < 0 or fisher_samples < 1:
            raise ValueError(f"lambda_ewc must be >= 0 and fisher_samples >= 1, got {lambda_ewc} and {fisher_samples}")
        self.lambda_ewc, self.fisher_samples, self.fisher_seed = float(lambda_ewc), fisher_samples, fisher_seed
        self.G_source = frozen_reference(source.build_generator(pretrained=True))
        self.D_source = frozen_reference(source.build_discriminator(pretrained=True))
        anchors = dict(self.G_source.named_buffers())
        self.penalized = [name for name, _ in self.G.named_parameters() if name in anchors]
        # F per penalized parameter, checkpointed with the method; "fisher_ready" says it was estimated
        self.fisher = nn.Module()
        for name in self.penalized:
            self.fisher.register_buffer(name.replace(".", "__"), torch.zeros_like(anchors[name]))
        self.register_buffer("fisher_ready", torch.tensor(False))

    def fisher_of(self, name: str) -> torch.Tensor:
        return getattr(self.fisher, name.replace(".", "__"))

    def enter_stage(self, stage) -> None:
        if not self.fisher_ready:
            self.estimate_fisher()

    def estimate_fisher(self) -> None:
        """F_i = mean over fisher_samples z of (d log sigmoid(D_S(G_S(z))) / d theta_i)^2, with G at the source's
        weights (training has not started); stored in the ``fisher`` buffers."""
        params = dict(self.G.named_parameters())
        if any(not torch.equal(params[n].detach(), b) for n, b in self.G_source.named_buffers() if n in params):
            raise RuntimeError("ewc: the Fisher information must be estimated before G leaves the source's weights")
        device = params[self.penalized[0]].device
        g = torch.Generator().manual_seed(self.fisher_seed)
        labels = None
        totals = [torch.zeros_like(params[n]) for n in self.penalized]
        for _ in range(self.fisher_samples):
            z = torch.randn(1, self.style_dim, generator=g).to(device)
            noise = [n.to(device) for n in self.G.make_noise(1, "cpu", generator=g)]
            if self.target.conditional:
                labels = torch.randint(self.target.n_classes, (1,), generator=g).to(device)
            log_likelihood = F.logsigmoid(self.D_source(self.G(z, labels, noise=noise))).sum()
            grads = torch.autograd.grad(log_likelihood, [params[n] for n in self.penalized], allow_unused=True)
            for total, grad in zip(totals, grads):
                if grad is not None:
                    total.add_(grad.square())
        with torch.no_grad():
            for name, total in zip(self.penalized, totals):
                self.fisher_of(name).copy_(total / self.fisher_samples)
            self.fisher_ready.fill_(True)

    def ewc_penalty(self) -> torch.Tensor:
        """sum_i F_i (theta_i - theta_S,i)^2 over the penalized G parameters (unweighted)."""
        params, anchors = dict(self.G.named_parameters()), dict(self.G_source.named_buffers())
        return torch.stack(
            [(self.fisher_of(n) * (params[n] - anchors[n]).square()).sum() for n in self.penalized]
        ).sum()

    def g_regularizers(self, batch: Batch, fakes: Fakes, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {"ewc": self.lambda_ewc * self.ewc_penalty()} if self.lambda_ewc else {}
