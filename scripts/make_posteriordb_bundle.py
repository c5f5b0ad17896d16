"""Bundle the data and reference summaries of the ported posteriordb posteriors into the package.

The package must run ``simplehmc compare --posterior NAME`` without a copy of posteriordb, so the
data and the reference summaries (means, standard deviations, posteriordb's bulk ESS and MCSE of
each mean) of the posteriors that :mod:`pyro_simplehmc.checks.posteriordb` ports are copied into
``pyro_simplehmc/data/posteriordb.json``.

Two sources, tried in this order for each posterior:

1. the repository's ``../shared/posteriordb/NAME`` folder (``data.json`` and
   ``reference_summary.json``), which holds the first six ports (and four more);
2. a clone of posteriordb itself (a bare git directory is enough: files are read with
   ``git show``): the data from ``posterior_database/data/data/DATA.json.zip``, the reference
   draws from ``reference_posteriors/draws/draws/NAME.json.zip`` (10 chains x 1,000 draws;
   mean and sd, ddof=1, over the 10,000 pooled draws), the bulk ESS from
   ``reference_posteriors/draws/info/NAME.info.json`` and the MCSE of each mean from
   ``reference_posteriors/summary_statistics/mean_value/mean_value/NAME.json``.

Usage: ``python scripts/make_posteriordb_bundle.py [--shared DIR] [--posteriordb GIT_DIR]``.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import zipfile
from pathlib import Path

import numpy as np

from pyro_simplehmc.checks.posteriordb import BUNDLE, POSTERIORS

KEEP = ("mean", "sd", "n_draws", "posteriordb_ess_bulk", "posteriordb_mcse_mean")
LICENCE = (
    "Data and reference summaries from posteriordb (github.com/stan-dev/posteriordb, BSD 3-Clause, "
    "Copyright (c) 2011-2024, Stan Developers and their Assignees); cite Magnusson, Buerkner & "
    "Vehtari, 'posteriordb: a set of posteriors for Bayesian inference and probabilistic "
    "programming'."
)
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared" / "posteriordb"
DEFAULT_POSTERIORDB = Path("/work/.mirror/stan-dev+posteriordb/repo")


def from_shared(folder: Path) -> dict:
    summary = json.loads((folder / "reference_summary.json").read_text())
    return {
        "source": summary["source"],
        "data": json.loads((folder / "data.json").read_text()),
        "reference": {
            quantity: {k: v for k, v in values.items() if k in KEEP}
            for quantity, values in summary["parameters"].items()
        },
    }


class Repository:
    """Files of a posteriordb clone (bare or not), read with ``git show HEAD:path``."""

    def __init__(self, git_dir: Path):
        self.git_dir = git_dir
        self.commit = self._git("rev-parse", "HEAD").decode().strip()

    def _git(self, *args: str) -> bytes:
        return subprocess.run(
            ["git", f"--git-dir={self.git_dir}", *args], check=True, capture_output=True
        ).stdout

    def json(self, path: str):
        return json.loads(self._git("show", f"HEAD:posterior_database/{path}"))

    def zipped_json(self, path: str):
        raw = self._git("show", f"HEAD:posterior_database/{path}")
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            (member,) = archive.namelist()
            return json.loads(archive.read(member))


def from_posteriordb(repo: Repository, name: str) -> dict:
    posterior = repo.json(f"posteriors/{name}.json")
    data = repo.zipped_json(f"data/data/{posterior['data_name']}.json.zip")
    # Some posteriors share another's reference (the centred eight schools: the non-centred).
    ref = posterior["reference_posterior_name"]
    if ref is None:
        raise ValueError(f"posteriordb has no reference draws for {name}")
    chains = repo.zipped_json(f"reference_posteriors/draws/draws/{ref}.json.zip")
    info = repo.json(f"reference_posteriors/draws/info/{ref}.info.json")["diagnostics"]
    mean_value = repo.json(
        f"reference_posteriors/summary_statistics/mean_value/mean_value/{ref}.json"
    )
    ess = dict(
        zip(
            info["diagnostic_information"]["names"],
            info["effective_sample_size_bulk"],
            strict=True,
        )
    )
    mcse = dict(zip(mean_value["names"], mean_value["mcse_mean"], strict=True))
    reference = {}
    for quantity in chains[0]:
        draws = np.concatenate([np.asarray(chain[quantity], dtype=float) for chain in chains])
        reference[quantity] = {
            "mean": float(draws.mean()),
            "sd": float(draws.std(ddof=1)),
            "n_draws": int(draws.size),
            "posteriordb_ess_bulk": float(ess[quantity]),
            "posteriordb_mcse_mean": float(mcse[quantity]),
        }
    return {
        "source": f"github.com/stan-dev/posteriordb @ {repo.commit}",
        "data": data,
        "reference": reference,
    }


def main(shared: Path, posteriordb: Path) -> None:
    bundle = {"licence": LICENCE, "posteriors": {}}
    repo = None
    for name in POSTERIORS:
        if (shared / name).is_dir():
            entry = from_shared(shared / name)
        else:
            repo = repo or Repository(posteriordb)
            entry = from_posteriordb(repo, name)
        bundle["posteriors"][name] = entry
    out = ROOT / "pyro_simplehmc" / "data" / BUNDLE
    out.write_text(json.dumps(bundle, separators=(",", ":")) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes, {len(POSTERIORS)} posteriors)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--posteriordb", type=Path, default=DEFAULT_POSTERIORDB)
    args = parser.parse_args()
    main(args.shared, args.posteriordb)
