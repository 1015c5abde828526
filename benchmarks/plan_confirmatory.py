"""Size a confirmatory study from two tuning studies' records: the paired spread and the pairs for a power.

    .venv/bin/python benchmarks/plan_confirmatory.py studies/tune-long-srunit studies/tune-long-cut \
        --metric directed_flip_rate --effect -0.05

Trials of two studies run with the same ``--seed`` train trial k on seed SEED + k, on the same data: their runs
pair by seed. The spread of the paired differences (method A's run minus method B's on the same seed) is an upper
bound of the spread a confirmatory study of two fixed settings will see, since the trials' parameters vary too.
For each score the script prints the number of pairs, the mean and standard deviation of the differences, the
best trial of each study, and, for ``--effect`` (the difference to detect, in the score's units; default: the
difference of the two best trials' means, which selection inflates), the pairs a two-sided paired t-test at
``--alpha`` needs for ``--power`` (noncentral t).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

SCORES = ("mean_iou", "pixel_accuracy", "directed_flip_rate", "flip_rate", "dist")


def records(folder: Path) -> dict[int, dict]:
    """seed -> record of every finished trial run in a tuning study's records folder."""
    out = {}
    for path in sorted((folder / "trials").glob("*.json")):
        record = json.loads(path.read_text())
        out[int(record["seed"])] = record
    return out


def pairs_needed(effect: float, sd: float, alpha: float, power: float, most: int = 10_000) -> int | None:
    """The fewest pairs n for which a two-sided paired t-test at ``alpha`` has ``power`` at ``effect``."""
    if sd <= 0 or effect == 0:
        return None
    for n in range(3, most):
        df = n - 1
        t_crit = stats.t.ppf(1 - alpha / 2, df)
        shift = abs(effect) / (sd / math.sqrt(n))
        achieved = stats.nct.sf(t_crit, df, shift) + stats.nct.cdf(-t_crit, df, shift)
        if achieved >= power:
            return n
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="records folder of study A (e.g. the tuned method)")
    parser.add_argument("b", type=Path, help="records folder of study B (e.g. the baseline)")
    parser.add_argument("--metric", default="mean_iou", choices=SCORES)
    parser.add_argument("--effect", type=float, help="difference A - B to detect (score units, fractions)")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--power", type=float, default=0.8)
    args = parser.parse_args()
    a, b = records(args.a), records(args.b)
    seeds = sorted(set(a) & set(b))
    print(f"{len(a)} runs in {args.a}, {len(b)} in {args.b}, {len(seeds)} paired by seed")
    lower = {"directed_flip_rate", "flip_rate", "dist"}
    for metric in SCORES:
        if not seeds or any(metric not in a[s]["scores"] or metric not in b[s]["scores"] for s in seeds):
            continue
        d = np.array([a[s]["scores"][metric] - b[s]["scores"][metric] for s in seeds])
        pick = min if metric in lower else max
        best_a = pick(a.values(), key=lambda r: r["scores"][metric])
        best_b = pick(b.values(), key=lambda r: r["scores"][metric])
        line = (f"{metric}: A - B over {len(d)} pairs: mean {d.mean():+.4f}, sd {d.std(ddof=1):.4f}; best A "
                f"{best_a['scores'][metric]:.4f} (seed {best_a['seed']}), best B {best_b['scores'][metric]:.4f} "
                f"(seed {best_b['seed']})")
        if metric == args.metric:
            effect = args.effect if args.effect is not None else best_a["scores"][metric] - best_b["scores"][metric]
            n = pairs_needed(effect, float(d.std(ddof=1)), args.alpha, args.power)
            line += f"; pairs for {args.power:.0%} power at {effect:+.4f}: {n}"
        print(line)


if __name__ == "__main__":
    main()
