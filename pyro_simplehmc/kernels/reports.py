"""What a run reports: :class:`ReportsMixin`, a part of :class:`~.base.MHKernel`.

The counters each iteration updates (acceptances, divergences, the running mean acceptance
probability), :meth:`ReportsMixin.logging` for Pyro's progress bar and
:meth:`ReportsMixin.diagnostics`, both as :class:`pyro.infer.HMC` has them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor

from ..core.mh import StepInfo

__all__ = ["ReportsMixin"]


class ReportsMixin:
    """Counters, :meth:`logging` and :meth:`diagnostics` for :class:`~.base.MHKernel`."""

    def logging(self) -> OrderedDict:
        """Step size and running mean acceptance probability (over chains), for Pyro's bar."""
        run = self._run or self._finished
        mean = float(run.mean_accept_prob.mean()) if run is not None else float("nan")
        step_size = self.step_size
        if isinstance(step_size, Tensor):
            step_size = float(step_size.mean())
        return OrderedDict([("step size", f"{step_size:.2e}"), ("acc. prob", f"{mean:.3f}")])

    def chain_diagnostics(self) -> list[dict[str, Any]]:
        """:meth:`diagnostics` of each chain of the batch, in order."""
        run = self._run or self._finished
        if run is None:
            raise RuntimeError("no run to diagnose: call setup(warmup_steps, ...) first")
        num_samples = max(run.t - run.warmup_steps, 0)
        diverging = (
            torch.stack(run.diverging, dim=1).cpu()
            if run.diverging
            else torch.zeros(run.num_chains, 0, dtype=torch.bool)
        )
        step_sizes = self._adapter.step_size.expand(run.num_chains).tolist()
        accepted = run.accepted.tolist() if isinstance(run.accepted, Tensor) else [run.accepted]
        evaluator = run.evaluator
        evals = {
            "potential evaluations": {
                "warmup": evaluator.warmup.potentials,
                "sampling": evaluator.sampling.potentials,
            },
            "gradient evaluations": {
                "warmup": evaluator.warmup.gradients,
                "sampling": evaluator.sampling.gradients,
            },
        }
        extra = self._extra_diagnostics()
        if self.keep_resume_state and run.last is not None:
            extra["resume state"] = self.resume_state()
        return [
            {
                "divergences": diverging[c].nonzero().flatten().tolist(),
                "acceptance rate": accepted[c] / num_samples if num_samples else float("nan"),
                "step size": step_sizes[c],
                **{key: dict(value) for key, value in evals.items()},
                **extra,
            }
            for c in range(run.num_chains)
        ]

    def diagnostics(self) -> dict[str, Any]:
        """Divergences (post-warmup iteration indices), acceptance rate, step size, cost counters.

        ``"potential evaluations"`` counts every evaluation of the potential and
        ``"gradient evaluations"`` those that also computed its gradient, each split into
        ``"warmup"`` (setup and step-size searches included) and ``"sampling"``; a batched
        evaluation counts once, as it is one evaluation for each chain. For a batch of several
        chains, a dict keyed ``"chain 0"``, ``"chain 1"``, ... of these.
        """
        per_chain = self.chain_diagnostics()
        if len(per_chain) == 1:
            return per_chain[0]
        return {f"chain {c}": d for c, d in enumerate(per_chain)}

    def _record(self, info: StepInfo | None) -> None:
        """Update the counters."""
        run = self._run
        warmup = run.t < run.warmup_steps
        if info is None:  # a model without latent sites: every step is accepted
            ones = torch.ones(run.num_chains)
            info = StepInfo(ones.bool(), ones, ones * 0, ones.bool() & False)
        if not warmup:
            run.accepted = run.accepted + info.accepted
            run.diverging.append(info.diverging)
        run.t += 1
        n = run.t if run.t <= run.warmup_steps else run.t - run.warmup_steps
        run.mean_accept_prob = run.mean_accept_prob + (info.accept_prob - run.mean_accept_prob) / n
        self.last_step_info = info
