"""Bundle the data and reference summaries of the ported posteriordb posteriors into the package.

The package must run ``simplehmc compare --posterior NAME`` without the repository's
``../shared/posteriordb`` folder, so the data and the reference summaries (means, standard
deviations, posteriordb's bulk ESS and MCSE of each mean) of the posteriors that
:mod:`pyro_simplehmc.checks.posteriordb` ports are copied into
``pyro_simplehmc/data/posteriordb.json``.

Usage: ``python scripts/make_posteriordb_bundle.py [path/to/shared/posteriordb]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pyro_simplehmc.checks.posteriordb import BUNDLE, POSTERIORS

KEEP = ("mean", "sd", "n_draws", "posteriordb_ess_bulk", "posteriordb_mcse_mean")
LICENCE = (
    "Data and reference summaries from posteriordb (github.com/stan-dev/posteriordb, BSD 3-Clause, "
    "Copyright (c) 2011-2024, Stan Developers and their Assignees); cite Magnusson, Buerkner & "
    "Vehtari, 'posteriordb: a set of posteriors for Bayesian inference and probabilistic "
    "programming'."
)


def main(root: Path) -> None:
    bundle = {"licence": LICENCE, "posteriors": {}}
    for name in POSTERIORS:
        folder = root / name
        summary = json.loads((folder / "reference_summary.json").read_text())
        bundle["posteriors"][name] = {
            "source": summary["source"],
            "data": json.loads((folder / "data.json").read_text()),
            "reference": {
                quantity: {k: v for k, v in values.items() if k in KEEP}
                for quantity, values in summary["parameters"].items()
            },
        }
    out = Path(__file__).resolve().parents[1] / "pyro_simplehmc" / "data" / BUNDLE
    out.write_text(json.dumps(bundle, separators=(",", ":")) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "shared" / "posteriordb"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
