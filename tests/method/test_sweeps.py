"""method/sweeps.py: z moved along a direction (plain and aligned) and a sweep's frames against direct
generation, in any batching."""

import torch
from tolerances import FLOAT32_EPS, IMAGE_ULPS

from direction_finder import gram_schmidt
from direction_finder.method.sweeps import move, sweep


def test_eta_zero_without_alignment_is_the_plain_sample(tiny_biggan):
    z = tiny_biggan.sample_z(3, torch.Generator().manual_seed(0))
    direction = gram_schmidt(torch.randn(2, 16))[1]
    (frame,) = list(sweep(tiny_biggan, direction, z, torch.tensor([0.0]), align=False, batch_size=2))
    # the same images generated in other batches: tanh-bounded, a few ulps of kernel rounding
    torch.testing.assert_close(frame, tiny_biggan(z), atol=IMAGE_ULPS * FLOAT32_EPS, rtol=0)



def test_alignment_puts_every_sample_at_the_same_coordinate():
    z = torch.randn(5, 8)
    d = gram_schmidt(torch.randn(1, 8))[0]
    moved = move(z, d, 2.5, align=True)
    torch.testing.assert_close(moved @ d, torch.full((5,), 2.5))
    # the part of z orthogonal to d is untouched
    torch.testing.assert_close(moved - (moved @ d)[:, None] * d, z - (z @ d)[:, None] * d)
    torch.testing.assert_close(move(z, d, 2.5, align=False) @ d, z @ d + 2.5)



def test_sweep_frames_match_direct_generation_in_any_batching(synthetic):
    z = synthetic.sample_z(3, torch.Generator().manual_seed(1))
    d = synthetic.true_directions[0]
    etas = torch.linspace(-2, 2, 5)
    for batch in (1, 2, 7, 100):
        frames = list(sweep(synthetic, d, z, etas, align=True, batch_size=batch))
        assert len(frames) == 5
        for eta, frame in zip(etas, frames):
            torch.testing.assert_close(frame, synthetic(move(z, d, eta, True)))
