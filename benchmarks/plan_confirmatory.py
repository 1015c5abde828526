"""Size a confirmatory study from two tuning studies' records: the paired spread and the pairs for a power.

    .venv/bin/python benchmarks/plan_confirmatory.py studies/tune-long-srunit-on-tuned-cut studies/tune-long-cut \
        --metric directed_flip_rate --pairs 16

Trials of two studies run with the same ``--seed`` train trial k on seed SEED + k, on the same data: their runs
pair by seed. The settings a confirmatory study compares are each study's best trial by the tuning objective
(``--select``, mean_iou as `srunit tune` ranks them); the effect the tuning suggests, for every score, is the
difference of those two trials' scores (which selection inflates). Two estimates of the spread of a paired
difference are printed:

- ``paired``: the standard deviation of the trials' differences on shared seeds. The trials' parameters vary
  too, so this bounds from above what two fixed settings will show.
- ``arms``: sqrt(2) times the standard deviation of study A's own trials, as if the two arms were independent
  (no credit for pairing) and spread like A's trials. Where A varies only parameters that change little (an
  added term on a fixed base), this is close to seed-to-seed noise.

For ``--metric`` the script prints the pairs a two-sided paired t-test at ``--alpha`` needs for ``--power`` at
the suggested effect (or ``--effect``), and with ``--pairs N`` the smallest effect N pairs detect with that
power (noncentral t), under each spread estimate.
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
    """seed -> record of every finished trial run in a tuning study's records folder.

    Raises:
        ValueError: a file that is not a readable record with a seed and scores, records of two studies, or two
            records of one seed (a run of other settings beside the study's): named, with the fix.
    """
    out: dict[int, dict] = {}
    where: dict[int, Path] = {}
    studies: dict[str, Path] = {}
    for path in sorted((folder / "trials").glob("*.json")):
        try:
            record = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
            raise ValueError(f"{path} cannot be read as a study record ({type(e).__name__}); restore it from the "
                             f"repository (git checkout -- {path}) or move it out of the folder") from None
        if not isinstance(record, dict) or not isinstance(record.get("seed"), int) \
                or not isinstance(record.get("scores"), dict):
            raise ValueError(f"{path} is not a trial record (no seed and scores); restore it from the repository or "
                             f"move it out of the folder")
        study = record.get("study")
        if isinstance(study, str):
            studies.setdefault(study, path)
            if len(studies) > 1:
                (first, first_path), (second, second_path) = list(studies.items())[:2]
                raise ValueError(f"{folder} holds records of two studies: {first!r} ({first_path}) and {second!r} "
                                 f"({second_path}); give one study's records folder")
        seed = record["seed"]
        if seed in out:
            raise ValueError(f"{folder} holds two records of seed {seed}: {where[seed]} and {path} (runs of other "
                             f"settings beside the study's); give one study's records folder, with one run per seed")
        out[seed], where[seed] = record, path
    return out


def t_test_power(pairs: int, effect: float, sd: float, alpha: float) -> float:
    """The power of a two-sided paired t-test of ``pairs`` pairs at ``alpha`` against a true mean difference
    ``effect`` with standard deviation ``sd`` (noncentral t)."""
    df = pairs - 1
    t_crit = stats.t.ppf(1 - alpha / 2, df)
    shift = abs(effect) / (sd / math.sqrt(pairs))
    return float(stats.nct.sf(t_crit, df, shift) + stats.nct.cdf(-t_crit, df, shift))


def pairs_needed(effect: float, sd: float, alpha: float, power: float, most: int = 10_000) -> int | None:
    """The fewest pairs n for which a two-sided paired t-test at ``alpha`` has ``power`` at ``effect``."""
    if sd <= 0 or effect == 0:
        return None
    return next((n for n in range(3, most) if t_test_power(n, effect, sd, alpha) >= power), None)


def smallest_effect(pairs: int, sd: float, alpha: float, power: float) -> float:
    """The smallest |effect| a two-sided paired t-test of ``pairs`` pairs at ``alpha`` detects with ``power``."""
    low, high = 0.0, 50.0 * sd
    for _ in range(100):  # bisection: the power grows with the effect
        mid = (low + high) / 2
        low, high = (mid, high) if t_test_power(pairs, mid, sd, alpha) < power else (low, mid)
    return high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="records folder of study A (e.g. the tuned method)")
    parser.add_argument("b", type=Path, help="records folder of study B (e.g. the baseline)")
    parser.add_argument("--metric", default="mean_iou", choices=SCORES, help="the endpoint to size the study for")
    parser.add_argument("--select", default="mean_iou", choices=SCORES,
                        help="the tuning objective that picks each study's best trial (default mean_iou)")
    parser.add_argument("--effect", type=float, help="difference A - B to detect (score units, fractions)")
    parser.add_argument("--pairs", type=int, help="also print the smallest effect this many pairs detect")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--power", type=float, default=0.8)
    args = parser.parse_args()
    for option, value, example in (("--alpha", args.alpha, 0.05), ("--power", args.power, 0.8)):
        if not 0 < value < 1:
            parser.error(f"{option} {value}: give a probability between 0 and 1, e.g. {option} {example}")
    if args.pairs is not None and args.pairs < 2:
        parser.error(f"--pairs {args.pairs}: a paired t-test needs 2 pairs or more")
    for name, folder in (("a", args.a), ("b", args.b)):
        if not any((folder / "trials").glob("*.json")):
            parser.error(f"{name}: {folder} holds no trial records (no trials/*.json); give a tuning study's "
                         "records folder, studies/STUDY")
    try:
        a, b = records(args.a), records(args.b)
    except ValueError as e:
        parser.error(str(e))
    seeds = sorted(set(a) & set(b))
    print(f"{len(a)} runs in {args.a}, {len(b)} in {args.b}, {len(seeds)} paired by seed")
    lower = {"directed_flip_rate", "flip_rate", "dist"}
    pick = min if args.select in lower else max
    best_a = pick(a.values(), key=lambda r: r["scores"][args.select])
    best_b = pick(b.values(), key=lambda r: r["scores"][args.select])
    print(f"best by {args.select}: A seed {best_a['seed']}, B seed {best_b['seed']}")
    for metric in SCORES:
        if not seeds or any(metric not in a[s]["scores"] or metric not in b[s]["scores"] for s in seeds):
            continue
        d = np.array([a[s]["scores"][metric] - b[s]["scores"][metric] for s in seeds])
        spreads = {"paired": float(d.std(ddof=1)),
                   "arms": math.sqrt(2) * float(np.std([r["scores"][metric] for r in a.values()], ddof=1))}
        suggested = best_a["scores"][metric] - best_b["scores"][metric]
        line = (f"{metric}: A - B over {len(d)} pairs: mean {d.mean():+.4f}; sd paired {spreads['paired']:.4f}, "
                f"arms {spreads['arms']:.4f}; best A {best_a['scores'][metric]:.4f} - best B "
                f"{best_b['scores'][metric]:.4f} = {suggested:+.4f}")
        if metric == args.metric:
            effect = args.effect if args.effect is not None else suggested
            for name, sd in spreads.items():
                line += f"\n  {name}: pairs for {args.power:.0%} power at {effect:+.4f}: " \
                        f"{pairs_needed(effect, sd, args.alpha, args.power)}"
                if sd <= 0:  # every difference (or every trial of A) is equal: no spread to size a test with
                    line += "; no spread: the scores do not vary, so no test can be sized"
                elif args.pairs:
                    line += f"; {args.pairs} pairs detect |effect| >= " \
                            f"{smallest_effect(args.pairs, sd, args.alpha, args.power):.4f}"
        print(line)


if __name__ == "__main__":
    main()
