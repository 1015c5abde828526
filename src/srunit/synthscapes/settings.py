"""What defines a SynthScapes benchmark: its settings (stored with it) and the named profiles."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from srunit.config import preset_names
from srunit.errors import ConfigError
from srunit.options import check_int, check_range
from srunit.synthscapes.scorer import SegmenterSettings

__all__ = ["CONDITIONS", "BenchSettings", "PROFILES", "profile_settings"]

CONDITIONS = ("unmatched", "matched")


@dataclass(frozen=True)
class BenchSettings:
    """Everything that defines a benchmark; stored in OUT/settings.json.

    ``overrides`` are training-config overrides (``section.key=value``) applied to every run
    on top of the method preset and the size/steps set here.
    """

    methods: tuple[str, ...] = ("cut", "srunit")
    conditions: tuple[str, ...] = CONDITIONS
    seeds: int = 3
    size: int = 64
    steps: int = 600
    batch_size: int = 1
    num_pool: int = 400
    num_test: int = 64
    matched_mix: float = 100.0
    data_seed: int = 0
    device: str = "auto"
    overrides: tuple[str, ...] = ()
    segmenter: SegmenterSettings = field(default_factory=SegmenterSettings)

    def __post_init__(self) -> None:
        known = set(preset_names())
        for m in self.methods:
            if m not in known and not Path(m).is_file():
                raise ConfigError(f"--methods: unknown method preset {m!r}; choose from {', '.join(sorted(known))} "
                                  f"or give a preset YAML file")
        if not self.methods:
            raise ConfigError("--methods is empty; pass e.g. --methods cut,srunit")
        for c in self.conditions:
            if c not in CONDITIONS:
                raise ConfigError(f"--conditions: unknown condition {c!r}; choose from {', '.join(CONDITIONS)}")
        if not self.conditions:
            raise ConfigError("--conditions is empty; pass e.g. --conditions unmatched,matched")
        minimum = {"seeds": 1, "size": 16, "steps": 1, "batch_size": 1, "num_pool": 8, "num_test": 1}
        for name, least in minimum.items():
            check_int(getattr(self, name), f"--{name.replace('_', '-')}", least)
        if self.size % 4:
            raise ConfigError(f"--size must be a multiple of 4 and at least 16, got {self.size}")
        check_range(self.matched_mix, "--matched-mix", 0.0, 100.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchSettings:
        data = dict(data)
        seg = SegmenterSettings(**data.pop("segmenter"))
        tuples = {f.name for f in fields(cls) if f.name in ("methods", "conditions", "overrides")}
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()}, segmenter=seg)


# CPU: about 2 s per 10 steps of CUT at 64 px on 2 cores; GPU: full-size networks at 128 px.
PROFILES: dict[str, dict[str, Any]] = {
    "cpu": dict(size=64, steps=600, num_pool=400, num_test=64,
                overrides=("model.ngf=32", "model.ndf=32", "model.n_blocks=6", "method.num_patches=64"),
                segmenter=SegmenterSettings(size=64, steps=1200, width=24)),
    "gpu": dict(size=128, steps=10000, num_pool=2000, num_test=200, overrides=(),
                segmenter=SegmenterSettings(size=128, num_images=1024, steps=3000, width=32)),
}


def profile_settings(profile: str, *, segmenter_steps: int | None = None, segmenter_images: int | None = None,
                     **changes: Any) -> BenchSettings:
    """Settings of a named profile (``cpu`` or ``gpu``) with ``changes`` applied (None = keep).

    The segmenter always works at the benchmark's image size; ``segmenter_steps`` and
    ``segmenter_images`` change its training length and set size.
    """
    if profile not in PROFILES:
        raise ConfigError(f"--profile: unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    base = dict(PROFILES[profile])
    base.update({k: v for k, v in changes.items() if v is not None})
    seg = base["segmenter"]
    for option, value in (("--segmenter-steps", segmenter_steps), ("--segmenter-images", segmenter_images)):
        if value is not None:
            check_int(value, option, 1)
    base["segmenter"] = replace(seg, size=base["size"], steps=segmenter_steps or seg.steps,
                                num_images=segmenter_images or seg.num_images)
    return BenchSettings(**base)
