import numpy as np
import pytest
import torch

from training.conditioning import ConditionFeatures
from training.models.cvae import CVAE, CVAEArgs, kl_divergence
from training.psf_metrics import rel_l1

COLUMNS = [("field", 0.0, 1.0), ("depth", 2.0, 100.0), ("wavelength", 450.0, 650.0)]
ARGS = CVAEArgs(kernel_size=16, latent_size=4, conditions=COLUMNS, network="mlp_basis",
                network_args={"hidden": 32, "depth": 2}, hidden=32)


def conditions(n=5):
    g = torch.Generator().manual_seed(0)
    return torch.stack([torch.rand(n, generator=g), 2 + 98 * torch.rand(n, generator=g),
                        450 + 200 * torch.rand(n, generator=g)], dim=1)


@pytest.mark.parametrize("network, args", [("mlp_basis", {"hidden": 32, "depth": 2}),
                                           ("conv_transpose", {"hidden": 32, "channels": 16}),
                                           ("pixel_shuffle", {"hidden": 32, "factor": 4}),
                                           ("separable", {"hidden": 32, "rank": 4})])
def test_shapes_non_negative_unit_sum(network, args):
    model = CVAE(CVAEArgs(kernel_size=16, latent_size=4, conditions=COLUMNS, network=network, network_args=args))
    c = conditions()
    psf = model.predict(c)
    assert psf.shape == (5, 16, 16)
    assert (psf >= 0).all()
    torch.testing.assert_close(psf.sum(dim=(1, 2)), torch.ones(5))
    mu, logvar = model.encoder(psf, c)
    assert mu.shape == logvar.shape == (5, 4)
    mu_p, logvar_p = model.prior(c)
    assert mu_p.shape == logvar_p.shape == (5, 4)


def test_condition_features_span_minus_one_to_one():
    feats = ConditionFeatures(COLUMNS)(torch.tensor([[0.0, 100.0, 450.0], [1.0, 2.0, 650.0]]))
    torch.testing.assert_close(feats, torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]))
    # depth and focus enter as their inverse: 1/depth halfway between 1/100 and 1/2 maps to 0
    with_focus = ConditionFeatures([*COLUMNS, ("focus", 1.0, 10.0)])
    mid_depth = 1.0 / (0.5 * (1 / 100 + 1 / 2))
    mid_focus = 1.0 / (0.5 * (1 / 10 + 1 / 1))
    feats = with_focus(torch.tensor([[0.5, mid_depth, 550.0, mid_focus]]))
    torch.testing.assert_close(feats, torch.zeros(1, 4), atol=1e-5, rtol=0)


def test_kl_is_zero_for_equal_and_positive_for_different_gaussians():
    mu, lv = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(kl_divergence(mu, lv, mu, lv), torch.zeros(3, 4))
    assert (kl_divergence(mu, lv, mu + 1, lv + 0.5) > 0).all()
    # closed form for a standard-normal prior: 0.5 * (var + mu^2 - 1 - logvar)
    expected = 0.5 * (lv.exp() + mu**2 - 1 - lv)
    torch.testing.assert_close(kl_divergence(mu, lv, torch.zeros_like(mu), torch.zeros_like(lv)), expected)


def test_rel_l1():
    ref = torch.zeros(1, 4, 4)
    ref[0, 1, 1] = 1.0
    pred = torch.zeros(1, 4, 4)
    pred[0, 2, 2] = 1.0
    assert rel_l1(pred, ref).item() == pytest.approx(2.0)
    assert rel_l1(ref, ref).item() == 0.0


def test_loss_terms_are_finite_and_backprop():
    model = CVAE(ARGS)
    c = conditions(8)
    target = torch.softmax(torch.randn(8, 256), dim=1).reshape(8, 16, 16)
    terms = model(target, c, c.flip(0))
    loss = terms["recon"] + terms["recon_prior"] + terms["kl_per_dim"].sum() + terms["interp"]
    loss.backward()
    assert np.isfinite(loss.item())
    assert terms["kl_per_dim"].shape == (4,)
    assert all(p.grad is not None for p in model.parameters())
