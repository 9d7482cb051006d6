"""Learnable Gaussian masking (Lee et al., "Compact 3D Gaussian Representation for Radiance
Field", CVPR 2024, §3.1).

Every Gaussian n carries a mask logit m_n. The binary mask is taken with a straight-through
estimator (eq. 2),

    M_n = sg(1[σ(m_n) > ε] − σ(m_n)) + σ(m_n),      ε = 0.01,

and multiplies both the scale and the opacity of the Gaussian (eq. 3), so a masked Gaussian
vanishes from the render while its logit still receives a gradient. The masking loss (eq. 4)

    L_m = (1/N) Σ_n σ(m_n)

weighted by λ_m pushes masks towards zero; Gaussians with σ(m_n) ≤ ε are pruned at every
densification step, every ``prune_every`` iterations after densification stops, and at save
time. Defaults are the paper code's (λ_m = 5e-4, mask lr 1e-2; objects: 4e-3 and 1e-3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class MaskingConfig:
    enabled: bool = True
    lambda_mask: float = 5e-4  # λ_m of eq. 4
    lr: float = 1e-2  # Adam learning rate of the mask logits
    threshold: float = 0.01  # ε: σ(m) ≤ ε is masked (and pruned)
    prune_every: int = 1000  # after densification stops (paper iterations; scaled with the schedule)
    init_logit: float = 1.0  # the paper initialises the logits to one


def binary_mask(mask_logits: Tensor, threshold: float = 0.01) -> Tensor:
    """M of eq. 2: 0/1 in the forward pass, the gradient of σ(m) in the backward pass. [N]."""
    soft = torch.sigmoid(mask_logits)
    hard = (soft > threshold).to(soft.dtype)
    return (hard - soft).detach() + soft


def mask_loss(mask_logits: Tensor) -> Tensor:
    """L_m of eq. 4: the mean of σ(m) over the Gaussians."""
    return torch.sigmoid(mask_logits).mean()


def masked_out(mask_logits: Tensor, threshold: float = 0.01) -> Tensor:
    """Boolean [N]: the Gaussians the mask removes (σ(m) ≤ ε), to prune."""
    return torch.sigmoid(mask_logits.detach()) <= threshold
