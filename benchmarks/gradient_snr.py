"""How much of learning's stochastic gradient is signal, at a given direction set.

At a fixed orthonormal set Q (SeFa's by default) this draws M batches exactly as learning does
(z, a uniformly drawn direction, eta, k Rademacher vectors) and takes the gradient of the mean
penalty with respect to Q, projected on the tangent space of orthonormal frames (the part of it
that can move Q). Each batch's gradient is taken twice, with independent Rademacher vectors, so
that the noise splits into the part the vectors bring and the part the latents bring.

From the M gradients it reports, with a jackknife 95% interval where one applies:
- |g|^2, the squared norm of the true (expected) gradient: an unbiased U-statistic, the mean
  of x_a . x_b over pairs of different batches;
- tr(Sigma), the noise of one batch's gradient (what one learning step sees);
- the batches needed for one averaged gradient to be as much signal as noise, tr(Sigma) / |g|^2,
  and what this CPU's 10 minutes of learning buy;
- a line search along the averaged gradient on held-out samples (common random numbers, paired
  intervals): does the direction the M batches agree on lower the held-out penalty?

    ../.venv/bin/python gradient_snr.py --batches 600 --out results/gradient-snr.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from omniart import EyeGenerator
from safetensors.torch import load_file
from torch import Tensor

from direction_finder.config import LearnConfig
from direction_finder.evaluation.measures import penalties
from direction_finder.evaluation.report import with_interval
from direction_finder.evaluation.stats import Statistic
from direction_finder.learning.objective import Batch, HeldOut, direction_penalty, draw_batch
from direction_finder.method.manifold import cayley_step, tangent
from direction_finder.method.penalty import rademacher

Z95 = 1.96


def gradient(g: EyeGenerator, Q0: Tensor, batch: Batch, vectors: Tensor, epsilon: float) -> Tensor:
    """The tangent part of d(mean penalty)/dQ at Q0 for one batch's samples with the Rademacher
    vectors (k, B, N), flattened: (N * z_dim,) float64."""
    Q = Q0.clone().requires_grad_(True)
    k = vectors.shape[0]
    loss = direction_penalty(
        g, Q, batch.z, batch.index, batch.eta, k=k, epsilon=epsilon, vectors=vectors, chunk_size=2 * k
    )
    loss.backward()
    return tangent(Q0, Q.grad).flatten().double()


def signal_squared(y: Tensor) -> float:
    """Unbiased |E y|^2 from M independent rows y (M, P): the mean of y_a . y_b over a != b."""
    m = y.shape[0]
    total = y.sum(0)
    return float((total @ total - (y * y).sum()) / (m * (m - 1)))


def jackknife(y: Tensor, statistic: Callable[[Tensor], float]) -> tuple[float, float]:
    """A statistic of the rows of y and the half-width of its jackknife 95% interval."""
    m = y.shape[0]
    value = statistic(y)
    keep = torch.ones(m, dtype=torch.bool)
    leave_one_out = []
    for b in range(m):
        keep[b] = False
        leave_one_out.append(statistic(y[keep]))
        keep[b] = True
    loo = torch.tensor(leave_one_out, dtype=torch.float64)
    se = math.sqrt((m - 1) / m * float(((loo - loo.mean()) ** 2).sum()))
    return value, Z95 * se


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="sefa", help="'sefa' or a saved set (.safetensors with a 'matrix')")
    parser.add_argument("--batches", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--epsilon", type=float, default=0.1, help="the training epsilon of the gradients")
    parser.add_argument(
        "--steps", default="0.3,1,3", help="line-search steps along the averaged gradient ('' for none)"
    )
    parser.add_argument("--heldout", type=int, default=1000, help="held-out samples of the line search")
    parser.add_argument("--budget-min", type=float, default=10.0, help="the learning budget to relate to")
    parser.add_argument("--seed", type=int, default=99)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    parser.add_argument("--class-name", default="blue")
    parser.add_argument("--out", default="results/gradient-snr.json")
    args = parser.parse_args()
    g = EyeGenerator(args.class_name, args.device)
    Q0 = g.sefa_directions(g.z_dim).float() if args.set == "sefa" else load_file(args.set)["matrix"].float()
    Q0 = Q0.to(g.device)
    n = Q0.shape[0]
    config = LearnConfig(batch_size=args.batch_size, k=args.k, epsilon=args.epsilon, num_directions=n)
    rng = torch.Generator().manual_seed(args.seed)
    first, second = [], []
    start = time.perf_counter()
    for b in range(args.batches):
        batch = draw_batch(g, config, rng)  # as learning draws a step's samples
        again = rademacher(tuple(batch.vectors.shape), generator=rng).to(batch.vectors.device)  # the same samples, other vectors
        first.append(gradient(g, Q0, batch, batch.vectors, args.epsilon))
        second.append(gradient(g, Q0, batch, again, args.epsilon))
        if (b + 1) % 25 == 0:
            print(f"{b + 1}/{args.batches} batches ({time.perf_counter() - start:.0f} s)", flush=True)
    seconds_per_batch = (time.perf_counter() - start) / (2 * args.batches)
    x1, x2 = torch.stack(first), torch.stack(second)  # (M, P): one Rademacher draw each
    both = (x1 + x2) / 2  # (M, P): the two draws averaged, independent across batches
    signal, signal_hw = jackknife(both, signal_squared)
    noise = float(x1.var(0).sum())  # tr Sigma of one batch's gradient (one draw of vectors)
    from_vectors = float(((x1 - x2) ** 2).sum(1).mean() / 2)  # E|x1 - x2|^2 / 2: the vectors' share
    budget_batches = args.budget_min * 60 / seconds_per_batch
    ratio = signal * budget_batches / noise  # |g|^2 / (tr Sigma / batches) for the budget's average
    upper = (signal + signal_hw) * budget_batches / noise  # the same at the interval's upper end
    body = {
        "set": args.set, "batches": args.batches, "batch_size": args.batch_size, "k": args.k, "epsilon": args.epsilon,
        "signal_squared": signal, "signal_squared_halfwidth": signal_hw, "noise_trace_per_batch": noise,
        "noise_share_from_vectors": from_vectors / noise, "seconds_per_batch": seconds_per_batch,
        "batches_for_snr_1": noise / signal if signal > 0 else None,  # None: no signal measured
        "budget_min": args.budget_min, "budget_batches": budget_batches,
        "budget_average_cosine_to_true": math.sqrt(ratio / (1 + ratio)) if ratio > 0 else 0.0,
        "budget_average_cosine_at_most": math.sqrt(upper / (1 + upper)) if upper > 0 else 0.0,
    }  # fmt: skip
    needed = f"{noise / signal:.3g}" if signal > 0 else "not bounded (no signal measured)"
    print(
        f"|g|^2 = {signal:.3g} ± {signal_hw:.2g}; one batch's noise tr(Sigma) = {noise:.3g} "
        f"({100 * from_vectors / noise:.0f}% from the Rademacher vectors); "
        f"batches for SNR 1: {needed}; {args.budget_min:g} min buys {budget_batches:.0f} "
        f"batches, whose average is at cosine {body['budget_average_cosine_to_true']:.2f} "
        f"(at most {body['budget_average_cosine_at_most']:.2f}) to the true gradient"
    )
    steps = [float(s) for s in args.steps.split(",") if s]
    if not steps:
        Path(args.out).write_text(json.dumps(body, indent=2) + "\n")
        return
    direction = both.mean(0).reshape(Q0.shape).double()
    direction = direction / direction.norm()  # (N, z_dim), unit tangent (Frobenius)
    held = HeldOut.draw(g, n, args.heldout, k=2, eta=5.0, seed=args.seed + 1)

    def heldout(Q: Tensor) -> Tensor:
        return penalties(g, Q, held.z, held.index, held.eta, held.vectors, k=2, epsilon=0.1, batch_size=32)

    base = heldout(Q0)
    body["heldout"] = {"samples": args.heldout, "at_set": Statistic.mean(base).as_dict(), "steps": {}}
    print(f"held-out penalty at the set: {with_interval(Statistic.mean(base), '.4g')}")
    for t in steps:
        moved = cayley_step(Q0.double(), direction, t).float()  # Frobenius distance ~ t from Q0
        diff = Statistic.mean(heldout(moved) - base)
        body["heldout"]["steps"][str(t)] = {**diff.as_dict(), "p_value": diff.p_value()}
        print(
            f"step {t:g} along the averaged gradient: {with_interval(diff, '.3g')} "
            f"(first order from |g|: at most {-t * math.sqrt(max(signal, 0)):.3g})",
            flush=True,
        )
    Path(args.out).write_text(json.dumps(body, indent=2) + "\n")


if __name__ == "__main__":
    main()
