"""How much of the Hessian Penalty is the smooth tanh term the curvature warm start diagonalises?

At a few latents (w = 0, Q = the axes, N = z_dim) it compares the penalty measured with many
Rademacher vectors against the part predicted by the rank-one tanh term alone,
2 mean_p c_p (|g_p|^4 - sum_i g_p,i^4) (direction_finder.method.warmstart). The rest comes from the
generator's own curvature; on a ReLU generator, from the kinks the finite differences cross.

    ../.venv/bin/python decompose.py --points 3 --k 48
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from omniart import EyeGenerator  # noqa: E402

from direction_finder.method.penalty import hessian_penalty, rademacher  # noqa: E402
from direction_finder.method.warmstart import output_jacobian, tanh_curvature_weights  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=3)
    parser.add_argument("--k", type=int, default=48, help="Rademacher vectors for the measured penalty")
    parser.add_argument("--seed", type=int, default=999)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    args = parser.parse_args()
    g = EyeGenerator("blue", args.device)
    z = g.sample_z(args.points, torch.Generator().manual_seed(args.seed))
    vectors = rademacher((args.k, 1, g.z_dim), generator=torch.Generator().manual_seed(args.seed + 1)).to(g.device)
    with torch.no_grad():
        for s in range(args.points):
            y, jacobian = output_jacobian(g, z[s : s + 1])  # (P,), (P, z_dim): dy/dz, = the rows g_p up to c_p
            c = tanh_curvature_weights(y)
            squared = (jacobian**2).sum(1)  # |g_p|^2 in the axes basis, up to the weight
            smooth = float(2 * (c * (squared**2 - (jacobian**4).sum(1))).mean())
            origin = torch.zeros(1, g.z_dim, device=g.device)
            measured = float(hessian_penalty(lambda w: g(z[s : s + 1] + w), origin, k=args.k, epsilon=0.1,
                                             vectors=vectors, chunk_size=16))
            print(f"point {s}: measured penalty (k={args.k}) {measured:.3f}, smooth tanh term {smooth:.3f} "
                  f"({100 * smooth / measured:.0f}%)", flush=True)


if __name__ == "__main__":
    main()
