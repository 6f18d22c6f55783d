"""SeFa's spectrum of the development DCGAN and its near-degenerate groups: the directions whose
eigenvalues 4,096 samples could not order, where second-order methods return an arbitrary
rotation and learning can add to them (see direction_finder/method/pca.py,
near_degenerate_groups).

    ../.venv/bin/python spectrum.py --out results/spectrum-omniart.json   # seconds
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from omniart import CLASSES, make

from direction_finder.evaluation.compare import spectrum_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/spectrum-omniart.json"))
    parser.add_argument("--class-name", default="blue", choices=CLASSES)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    args = parser.parse_args()
    spectrum = spectrum_of(make(args.class_name, args.device), 100)
    assert spectrum is not None
    grouped = sum(b - a + 1 for a, b in spectrum["groups"])
    body = {"model": "omniart-eye", "class_name": args.class_name, **spectrum}
    args.out.write_text(json.dumps(body, indent=2) + "\n")
    print(f"{grouped} of 100 directions in near-degenerate groups: {spectrum['groups']}")
    print("largest eigenvalues:", ", ".join(f"{v:.4g}" for v in spectrum["values"][:12]))


if __name__ == "__main__":
    main()
