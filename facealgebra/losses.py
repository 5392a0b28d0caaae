"""Losses: the MMD regulariser (InfoVAE), the KL regulariser (the original VLAE) and the L1 reconstruction.

MMD estimator. For posterior samples z_1..z_n ~ q(z) and prior samples y_1..y_m ~ N(0, I) we use the unbiased
U-statistic of Gretton et al. (2012):
    MMD^2 = 1/(n(n-1)) sum_{i!=j} k(z_i, z_j) + 1/(m(m-1)) sum_{i!=j} k(y_i, y_j) - 2/(nm) sum_{i,j} k(z_i, y_j)
It is zero in expectation when q = p, so two samples of one distribution score about 0 at any batch size (the
biased V-statistic would add a positive offset of order 1/n), and it stays a smooth function of the samples.

Kernel. k(z, z') = exp(-||z - z'||^2 / bandwidth) with bandwidth = 2 * d for a d-dimensional layer. That is the
expected squared distance between two draws of N(0, I_d), so for samples near the prior the kernel sits in its
informative middle range instead of saturating at 0 or 1 as d changes; InfoVAE's reference code scales its
bandwidth with the dimension for the same reason.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, bandwidth: float) -> torch.Tensor:
    return torch.exp(-torch.cdist(a, b).pow(2) / bandwidth)


def mmd(samples: torch.Tensor, prior_samples: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 between two batches of shape (n, d) and (m, d), with the 2d-bandwidth Gaussian kernel."""
    n, m, dim = samples.shape[0], prior_samples.shape[0], samples.shape[1]
    bandwidth = 2.0 * dim
    k_qq = gaussian_kernel(samples, samples, bandwidth)
    k_pp = gaussian_kernel(prior_samples, prior_samples, bandwidth)
    k_qp = gaussian_kernel(samples, prior_samples, bandwidth)
    off_diagonal_qq = (k_qq.sum() - k_qq.diagonal().sum()) / (n * (n - 1))
    off_diagonal_pp = (k_pp.sum() - k_pp.diagonal().sum()) / (m * (m - 1))
    return off_diagonal_qq + off_diagonal_pp - 2.0 * k_qp.mean()


def mmd_to_prior(samples: torch.Tensor) -> torch.Tensor:
    """MMD^2(q(z), N(0, I)) estimated against as many fresh prior draws as there are samples."""
    return mmd(samples.float(), torch.randn_like(samples, dtype=torch.float32))


def kl_to_prior(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)), summed over dimensions, averaged over the batch."""
    mu, log_sigma = mu.float(), log_sigma.float()
    return 0.5 * (mu.pow(2) + (2 * log_sigma).exp() - 1.0 - 2 * log_sigma).sum(dim=1).mean()


def reconstruction(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per pixel (L1, as in the original VLAE code)."""
    return F.l1_loss(x_hat.float(), x.float())


def layer_regularisers(
    reg: str,
    params: list[tuple[torch.Tensor, torch.Tensor]],
    samples: list[torch.Tensor],
    values_per_image: int,
) -> list[torch.Tensor]:
    """One regulariser per ladder layer, on the scale of the per-pixel reconstruction term.

    "mmd": MMD^2(q(z_l), N(0, I)), weighted equally with the reconstruction as in the MMD-VLAE.
    "kl":  KL(q(z_l | x) || N(0, I)) / values_per_image, so that reconstruction + sum of these is the negative
           ELBO per pixel value: the original VLAE objective on the same scale as ours.
    """
    if reg == "mmd":
        return [mmd_to_prior(z) for z in samples]
    return [kl_to_prior(mu, log_sigma) / values_per_image for mu, log_sigma in params]
