"""Check that a preset file trains exactly what a tuning trial trained: before a confirmatory study commits an arm.

    .venv/bin/python benchmarks/preset_matches_trial.py studies/confirm-long/presets/cut-tuned.yaml \
        studies/tune-long-cut/trials/cut-f846791e5aa2.json --profile long

The preset's training config as `srunit bench synthscapes --profile PROFILE` builds it for the trial's seed, with
the record's data and evaluation settings, is compared key by key with the trial's recorded settings (placement
keys such as the run's name and folder apart, as the records leave them out). Prints every difference; exits 1
if there is one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from srunit.errors import SrunitError
from srunit.synthscapes import profile_settings
from srunit.synthscapes.benchmark import run_config, run_settings


def differences(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, value in a, value in b) wherever two nested dicts differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [(prefix[:-1], a, b)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", help="a preset file (or a packaged preset's name)")
    parser.add_argument("record", type=Path, help="a tuning trial's record (studies/STUDY/trials/NAME.json)")
    parser.add_argument("--profile", default="long", help="the benchmark profile the trial trained at")
    args = parser.parse_args()
    try:
        record = json.loads(args.record.read_text())
        settings = record["settings"]
        condition = settings["data"]["condition"]
        seed, split = int(record["seed"]), settings["evaluation"]["split"]
    except (OSError, UnicodeDecodeError, ValueError) as error:
        parser.error(f"record {args.record}: cannot be read as JSON ({error}); give a trial's record, "
                     "studies/STUDY/trials/NAME.json")
    except (KeyError, TypeError) as error:
        parser.error(f"record {args.record}: not a tuning trial's record (no {error}); give a trial's record, "
                     "studies/STUDY/trials/NAME.json")
    try:
        bench = profile_settings(args.profile, methods=(args.preset,), conditions=(condition,))
        config = run_config(bench, args.preset, Path("data"), Path("runs"), "check", seed)
        ours = run_settings(bench, config, condition, split=split)
    except SrunitError as error:  # an unknown --profile, a preset that is not there or does not load
        parser.error(str(error))
    found = differences(ours, settings)
    for key, mine, theirs in found:
        print(f"{key}: preset {mine!r}, trial {theirs!r}")
    print(f"{args.preset} against {args.record}: {len(found)} difference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
