"""Start-up cost: the time and memory to import the API (what every serve, worker and CLI process pays).

    .venv/bin/python -m bench.import_time [--baseline REV] [--repeat 7] [--production PYTHON]

Imports `salesflow.api.main` in fresh interpreters, alternating this tree and `--baseline` (a git
revision checked out to a temporary worktree, put first on `PYTHONPATH`); prints the medians and their ratio.
`--production` also times this tree under another interpreter: a production environment made with
`UV_PROJECT_ENVIRONMENT=/tmp/prod uv sync --frozen --no-dev` (no test tools: httpx skips its CLI's imports).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import emit

ROOT = Path(__file__).resolve().parents[1]
MODULE = "salesflow.api.main"
# Wall time and peak RSS (KB) of one import, measured by the child itself.
PROBE = (
    "import resource, time; t = time.perf_counter(); import {module}; "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
)


def import_once(python: str, src: Path) -> tuple[float, float]:
    out = subprocess.run(
        [python, "-c", PROBE.format(module=MODULE)],
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), float(out[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", default="602cab1", help="git revision to compare with")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--production", help="another interpreter to time this tree with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(worktree), args.baseline],
            check=True,
        )
        try:
            runs = {
                "this tree": (sys.executable, ROOT / "src"),
                f"baseline {args.baseline}": (sys.executable, worktree / "src"),
            }
            if args.production:
                runs["this tree, production install"] = (args.production, ROOT / "src")
            for python, src in runs.values():  # compile the bytecode once, outside the samples
                import_once(python, src)
            samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
            for _ in range(args.repeat):
                for name, (python, src) in runs.items():
                    samples[name].append(import_once(python, src))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], check=True
            )
    figures = {
        name: {
            "import_s": round(statistics.median(s for s, _ in measured), 2),
            "peak_rss_mb": round(statistics.median(m for _, m in measured)),
        }
        for name, measured in samples.items()
    }
    this, baseline = (figures[name]["import_s"] for name in list(runs)[:2])
    emit("import_time", {**figures, "ratio_to_baseline": round(this / baseline, 2)})


if __name__ == "__main__":
    main()
