import torch

from facealgebra.losses import kl_to_prior, mmd, mmd_to_prior


def test_mmd_is_about_zero_for_two_samples_of_one_distribution():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(500, 10, generator=generator)
    b = torch.randn(500, 10, generator=generator)
    assert abs(mmd(a, b).item()) < 0.005


def test_mmd_grows_with_the_mean_shift():
    generator = torch.Generator().manual_seed(1)
    prior = torch.randn(400, 4, generator=generator)
    values = [mmd(torch.randn(400, 4, generator=generator) + shift, prior).item() for shift in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values)
    assert values[0] < 0.01 < values[1] and values[3] > 0.3


def test_mmd_to_prior_penalises_a_collapsed_posterior():
    torch.manual_seed(0)
    assert mmd_to_prior(torch.zeros(200, 2)).item() > 0.1  # analytic value 1 + 1/2 - 2 * 2/3 = 0.167
    assert abs(mmd_to_prior(torch.randn(200, 2)).item()) < 0.02


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(8, 3)
    assert kl_to_prior(zeros, zeros).item() == 0.0
    assert kl_to_prior(zeros + 1.0, zeros).item() > 0.0
