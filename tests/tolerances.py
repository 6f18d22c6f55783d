"""Float tolerances derived from precision and the size of what is compared.

Other CPUs run other kernels (AVX-512, AVX2, scalar; oneDNN's ISA), so sums come out in another
order and results differ in the last bits. A tolerance must therefore follow from the dtype's
rounding unit and from how much the computation amplifies it, never from one machine's result.
"""

import torch

FLOAT32_EPS = torch.finfo(torch.float32).eps  # 1.19e-7: the relative rounding of one float32 value
FLOAT64_EPS = torch.finfo(torch.float64).eps  # 2.22e-16

# A generator's image is tanh-bounded (|f| <= 1); after the ~20 layers of a BigGAN a pixel carries
# a few ulps of rounding that depend on the kernel's summation order (measured: 1-3 ulps between
# thread counts and between AVX-512 and scalar kernels). We allow 16.
IMAGE_ULPS = 16


def second_difference_error(epsilon: float, ulps: int = IMAGE_ULPS, eps: float = FLOAT32_EPS) -> float:
    """Bound on the rounding error of (f(w+ev) - 2 f(w) + f(w-ev)) / e^2 for |f| <= 1.

    The three (or, with the centre dropped, two) evaluations each carry `ulps` ulps; the
    difference cancels them to nothing, so the absolute error survives and is divided by e^2.
    """
    return 4 * ulps * eps / epsilon**2


def assert_close_to_scale(actual: torch.Tensor, expected: torch.Tensor, rel: float, what: str = "") -> None:
    """max |actual - expected| <= rel * max |expected|: errors measured against the size of the
    whole quantity (a gradient's largest entry), not per element, where a tiny entry makes any
    relative test meaningless."""
    scale = float(expected.detach().abs().max())
    error = float((actual.detach() - expected.detach()).abs().max())
    assert error <= rel * scale, f"{what}: max error {error:.3g} > {rel:.3g} x scale {scale:.3g}"
