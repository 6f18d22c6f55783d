"""What compare is asked to measure with (CompareSettings). Light on purpose (no torch at import):
the command line's help shows these defaults."""

from __future__ import annotations

from dataclasses import dataclass

from direction_finder.compiled import COMPILE_MODES
from direction_finder.config import FLOAT_LIMITS, LIMITS
from direction_finder.errors import UsageError
from direction_finder.evaluation.budget import DEFAULT_BUDGET, Budget, parse_budget
from direction_finder.validation import check_fields, one_of, parse_memory

PRECISE_SAMPLES = 8  # `precise` without `samples`


@dataclass(frozen=True)
class CompareSettings:
    samples: int | None = None  # every metric on these samples (precise); None: chosen by the budget
    seed: int = 0
    top: int = 8  # N': directions in the diagonal-dominance Hessians
    eta: float = 5.0
    epsilon: float = 0.1
    k: int = 2
    sweep_steps: int = 7  # coefficient values in the activeness sweep (precise)
    batch_size: int | None = None  # images per generator call; None: render_batch(generator, None, max_memory)
    layer: str | None = None
    latents: str | None = None  # a .npy (n, z_dim): the user's held-out samples (precise, samples = n)
    budget: str | None = None  # `10m`, `90s` or an image count; None: DEFAULT_BUDGET (unless precise)
    precise: bool = False
    max_memory: str | None = None  # "8GiB": the default batch_size is made to fit it
    compile: str = "auto"  # the forward through torch.compile: on, off, or auto (where the budget is long)

    def __post_init__(self) -> None:
        if self.max_memory is not None:
            parse_memory(self.max_memory)
        check_fields(
            self,
            {
                "samples": (1, LIMITS["eval_samples"][1]),
                "top": (1, LIMITS["num_directions"][1]),
                "batch_size": LIMITS["batch_size"],
                "k": LIMITS["k"],
                "sweep_steps": (2, 1000),
                "seed": LIMITS["seed"],
            },
            {"eta": FLOAT_LIMITS["eta"], "epsilon": FLOAT_LIMITS["epsilon"]},
            optional=("samples", "batch_size"),
        )
        one_of("compile", self.compile, COMPILE_MODES)
        if self.budget is not None:
            parse_budget(self.budget)
            if self.is_precise:
                raise UsageError(
                    "`budget` and `samples` (or `precise`, `latents`) exclude each other: "
                    "a budget chooses the samples; give one or the other"
                )

    @property
    def is_precise(self) -> bool:
        return self.precise or self.samples is not None or self.latents is not None

    @property
    def precise_samples(self) -> int:
        return self.samples if self.samples is not None else PRECISE_SAMPLES

    @property
    def parsed_budget(self) -> Budget:
        return parse_budget(self.budget if self.budget is not None else DEFAULT_BUDGET)


__all__ = ["PRECISE_SAMPLES", "CompareSettings"]
