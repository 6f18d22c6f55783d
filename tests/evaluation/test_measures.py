"""evaluation/measures.py: per-sample measures against independent computations: local activeness
of a linear generator, diagonal dominance from a known Hessian, matching directions to axes."""

import numpy as np
import torch
from tolerances import FLOAT32_EPS

from direction_finder import gram_schmidt
from direction_finder.evaluation.compare import CompareSettings, Probe
from direction_finder.evaluation.measures import diagonal_dominance, hessians, jacobian_gram, local_activeness, matching


def test_local_activeness_is_the_squared_derivative_of_a_linear_generator():
    w = torch.randn(12, 5, generator=torch.Generator().manual_seed(0))

    class Linear:  # G(z) = W z: J = W at every z
        z_dim, device = 5, torch.device("cpu")

        def __call__(self, z):
            return (z @ w.T).reshape(-1, 1, 3, 4)

    z = torch.randn(1, 5)
    gram = jacobian_gram(Linear(), z, Linear()(z), 0.1, batch_size=4)
    q = gram_schmidt(torch.randn(3, 5, generator=torch.Generator().manual_seed(1)))
    exact = ((q.double() @ w.double().T) ** 2).mean(dim=1)  # mean over the 12 outputs of (W q)^2
    # differences of a linear map are exact but for float32 rounding of |Wz| ~ 5, over eps 0.1
    np.testing.assert_allclose(local_activeness([gram], q)[0].numpy(), exact.numpy(), rtol=1e-4)


def test_diagonal_dominance_matches_a_direct_computation_from_the_known_hessian():
    g = Quadratic()
    Q = gram_schmidt(torch.randn(6, 6, generator=torch.Generator().manual_seed(1)))
    top = [4, 1, 2]
    probe = Probe.draw(g, 6, CompareSettings(samples=2))
    fd = hessians(g, Q, top, probe.z, 0.5, batch_size=16)  # (S, 1, 3, 4, 3, 3)
    # Independent: the Hessian w.r.t. w of z + w Q_top is Q_top M_p Q_top^T, the same at every z.
    sub = Q[top].double().numpy()
    exact = np.einsum("ad,pde,be->pab", sub, g.m.numpy(), sub)  # (P, 3, 3)
    # central differences of a quadratic are exact but for rounding: each entry carries
    # ~4 eps32 |f| / eps^2 (|f| <= ~10 here, eps 0.5: ~2e-5); 1e-3 is far above that and far
    # below the entries themselves (O(1))
    np.testing.assert_allclose(fd[0].reshape(12, 3, 3).numpy(), exact, rtol=1e-3, atol=1e-3)
    eye = np.eye(3, dtype=bool)
    absolute = np.abs(exact)
    d_percent = 100 * np.mean([a[eye].max() >= a[~eye].max() for a in absolute])
    d_ratio = absolute[:, eye].mean() / absolute[:, ~eye].mean()
    ours = diagonal_dominance(fd)
    # D% counts the same comparisons (exact unless an entry sits within rounding of a tie); D_R is
    # a ratio of means of entries that each carry the error above
    assert abs(ours[0] - d_percent) < 1e-9 and abs(ours[1] - d_ratio) < 1e-3 * d_ratio
    assert 0 < d_percent < 100  # a case that can tell right from wrong



def test_matching_picks_the_largest_cosine_axis():
    Q = gram_schmidt(torch.tensor([[0.1, -3.0, 0.2], [1.0, 0.0, 0.5]]))
    axes, cosines = matching(Q)
    # a float32 unit vector's entry: within a few eps32 (1.2e-7) of the exact cosine
    assert axes == [1, 0] and abs(cosines[0] - 3.0 / np.linalg.norm([0.1, 3.0, 0.2])) < 8 * FLOAT32_EPS


class Quadratic:
    """G(z)_p = z^T M_p z / 2: the Hessian of pixel p w.r.t. z is M_p (known)."""

    def __init__(self, z_dim=6, pixels=12, seed=0):
        g = torch.Generator().manual_seed(seed)
        m = torch.randn(pixels, z_dim, z_dim, generator=g, dtype=torch.float64)
        self.m = (m + m.transpose(1, 2)) / 2
        self.m[::3] = torch.diag_embed(torch.randn(pixels // 3 + (pixels % 3 > 0), z_dim, generator=g,
                                                   dtype=torch.float64) * 3)
        self.z_dim, self.device = z_dim, torch.device("cpu")

    def sample_z(self, n, generator=None):
        return torch.randn(n, self.z_dim, generator=generator)

    def __call__(self, z):
        z = z.double()
        return (0.5 * torch.einsum("nd,pde,ne->np", z, self.m, z)).float().reshape(-1, 1, 3, 4)
