"""A Lipschitz penalty on the discriminator (SRUNIT App. G, ablation E6; Gulrajani et al., NIPS 2017 [20]).

    L_lip = E_x [ ||grad_x Dbar_Y(x)||_2 + ||grad_{G(x)} Dbar_Y(G(x))||_2 ]

Our reading of App. G, whose sentence "x̄ is the mean value of x and Ḡ(x) the mean value of G(x)"
is given as the reason that a gradient suffices where a patch discriminator would need a Jacobian:
the mean is taken over the patch logits of D_Y, Dbar_Y(x) = mean over positions of D_Y(x), a scalar
per image whose input gradient is one backward pass. The penalty is the norm itself (App. G), not
WGAN-GP's (||grad|| - 1)^2 at interpolates; it is evaluated at the images themselves.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def mean_logit_gradient_norms(discriminator: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor
                              ) -> torch.Tensor:
    """||grad_x mean_positions D(x)||_2 for each image: images (B, C, H, W) -> (B,) float32, with graph.

    The images are detached; D runs in float32 outside any autocast region, and the gradient is
    taken with ``create_graph=True``, so the norms can be minimised over D's parameters (a double
    backward). D must treat the images of a batch independently (instance norm, no batch norm):
    the gradient of the sum over images of the mean logits then holds every image's own gradient.
    """
    x = images.detach().float().requires_grad_(True)
    with torch.autocast(x.device.type, enabled=False):
        score = discriminator(x).float().flatten(1).mean(1).sum()
        (grad,) = torch.autograd.grad(score, x, create_graph=True)
    return torch.linalg.vector_norm(grad.flatten(1), dim=1)


def lipschitz_penalty(discriminator: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                      fake: torch.Tensor) -> torch.Tensor:
    """L_lip averaged over the batch: real x and fake G(x), (B, 3, H, W); one batched pass of D."""
    norms = mean_logit_gradient_norms(discriminator, torch.cat([real, fake]))
    real_norms, fake_norms = norms.split([real.shape[0], fake.shape[0]])
    return (real_norms + fake_norms).mean()
