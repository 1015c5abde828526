"""What defines a SynthScapes benchmark: its settings (stored with it) and the named profiles."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from srunit.checks import MAX_BATCH, MAX_STEPS, check_int, check_not_one, check_range
from srunit.config import method_options, preset_names, read_preset, refuse_overrides_of
from srunit.errors import ConfigError
from srunit.registry import METHODS, TERMS
from srunit.synthscapes.dataset import MAX_IMAGES, MAX_SIZE, MIN_SIZE
from srunit.synthscapes.scorer import SegmenterSettings

__all__ = ["CONDITIONS", "DEFAULT_CONDITIONS", "NONBIJECTIVE", "ALL_METHODS", "DEFAULT_SEEDS", "BenchSettings",
           "PROFILES", "profile_settings", "expand_methods", "overrides_for", "check_files_keep_their_values"]

# unmatched: K-means split (the paper's App. C); matched: mixed back (App. D); nonbijective: a class domain B holds
# and domain A never does (StegoGAN's setting; dataset.write_nonbijective_split). The default is the paper's two.
CONDITIONS = ("unmatched", "matched", "nonbijective")
DEFAULT_CONDITIONS = ("unmatched", "matched")
NONBIJECTIVE = "nonbijective"
ALL_METHODS = "all"  # --methods all: every packaged preset (every registered method and ablation)
DEFAULT_SEEDS = 5  # the fewest seeds for which a paired 95% interval is worth reading
MAX_SEEDS = 1000  # runs per method and condition (as tune --trial-seeds)


def expand_methods(methods: tuple[str, ...]) -> tuple[str, ...]:
    """``all`` -> every packaged preset, in name order, followed by any other entries (kept once each)."""
    out: list[str] = []
    for m in methods:
        for name in (preset_names() if m == ALL_METHODS else [m]):
            if name not in out:
                out.append(name)
    return tuple(out)


def _method_fields(preset: str) -> set[str]:
    """The method options of ``preset``'s method that are on: an added term's section (``robust``, ...)
    counts only where the preset (or its method's variant) switches it on, so a benchmark-wide
    ``method.robust.weight`` changes SRUNIT's beta and does not give CUT an Eq. 3 term."""
    data = read_preset(preset).get("method") or {}
    name = data.get("name")
    if name not in METHODS:
        return set()
    options = method_options({"name": name})
    keys = {f.name for f in fields(options)} - {"terms"}
    terms = getattr(options, "terms", None)
    if terms is not None:  # a method that takes added loss terms
        keys |= set(terms) | {section for section in TERMS.names() if section in data}
    return keys


def overrides_for(preset: str, overrides: tuple[str, ...]) -> tuple[str, ...]:
    """The overrides that apply to ``preset``: ``method.KEY=...`` only where its method has option KEY
    (the CPU profile's ``method.num_patches`` means nothing to CycleGAN); all other sections always."""
    known = _method_fields(preset)
    def applies(override: str) -> bool:
        key = override.partition("=")[0]
        return not key.startswith("method.") or key.split(".")[1] in known

    return tuple(o for o in overrides if applies(o))


def check_files_keep_their_values(methods: tuple[str, ...], applied: tuple[str, ...], given: tuple[str, ...],
                                  profile: str) -> None:
    """ConfigError where a method's own preset file sets an option that the profile's overrides (``applied`` holds
    them, then the user's ``given``) set to another value for every run: `bench synthscapes --methods tiny.yaml
    --profile cpu`, tiny.yaml with `model: {ngf: 4}`, trained ngf 32 without a word, and a study's best.yaml (`base:
    tiny.yaml`) then trained another width than the one tuned. An option the file sets to the value its base preset
    gives is the file's all the same (`model: {n_blocks: 9}` on `base: cut` trained 6). An option the user gives on
    the command line wins over both, as always."""
    from srunit.config import dotted, keys_set_by_files, load_config, parse_overrides

    named = set(dotted(parse_overrides(list(given))))
    for method in methods:
        mine = keys_set_by_files(method)
        if not mine:
            continue
        profiles = dotted(parse_overrides(list(overrides_for(method, applied))))
        config = load_config(method)
        read, trained = dotted(config.to_dict()), dotted(config.with_overrides(profiles).to_dict())
        clash = [(key, origin) for key, (_, origin) in mine.items()
                 if key in profiles and key not in named and trained.get(key) != read.get(key)]
        if clash:
            files = ", ".join(dict.fromkeys(origin for _, origin in clash))
            sets = ", ".join(f"{key} {read.get(key)!r}" for key, _ in clash)
            profile_sets = ", ".join(f"{key} {trained.get(key)!r}" for key, _ in clash)
            keep = " ".join(f"--{key} {read.get(key)}" for key, _ in clash)
            raise ConfigError(f"{files} sets {sets}, and the {profile} profile sets {profile_sets} for every run: "
                              f"give {keep} to train the file's values, or leave them out of the file to train the "
                              f"profile's (nothing was written)")


# The training options a benchmark run takes from the benchmark's settings (`run_config`), with the option that sets
# them: an override of one contradicted that option (`--train.steps 5` beside `--steps 2`) or was the same for
# every seed.
_RUNS = "--out: OUT/CONDITION/PRESET-seedN"
BENCH_OWNED = {
    "train.seed": "--first-seed and --seeds: one seed per run, never one for all",
    "train.steps": "--steps", "train.epochs": "--steps", "train.epochs_decay": "--steps",
    "train.batch_size": "--batch-size", "train.device": "--device",
    "data.root": "the data it makes under --out", "data.dir_a": "the data it makes under --out",
    "data.dir_b": "the data it makes under --out",
    "data.load_size": "--size", "data.crop_size": "--size",
    "train.runs_dir": _RUNS, "train.name": _RUNS,
}


@dataclass(frozen=True)
class BenchSettings:
    """Everything that defines a benchmark; stored in OUT/settings.json.

    ``overrides`` are training-config overrides (``section.key=value``) applied to every run
    on top of the method preset and the size/steps set here.
    """

    methods: tuple[str, ...] = ("cut", "srunit")
    conditions: tuple[str, ...] = DEFAULT_CONDITIONS
    seeds: int = DEFAULT_SEEDS
    first_seed: int = 0  # the runs use training seeds first_seed .. first_seed + seeds - 1
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
        refuse_overrides_of(self.overrides, BENCH_OWNED, "the benchmark")
        for o in self.overrides:
            if o.startswith("method.") and not any(o in overrides_for(m, (o,)) for m in self.methods):
                raise ConfigError(f"override --{o.split('=')[0]}: none of the methods {', '.join(self.methods)} "
                                  f"has this option; drop it or add a method that has it")
        for m in self.methods:  # (the command line keeps each once) a run listed twice: counted twice, trained twice
            if self.methods.count(m) > 1:
                raise ConfigError(f"--methods names {m!r} {self.methods.count(m)} times; give each method once")
        stems: dict[str, str] = {}
        for m in self.methods:  # a method's file stem names its run folders (CONDITION/STEM-seedN) and its rows
            if stems.setdefault(Path(m).stem, m) != m:
                raise ConfigError(f"--methods {stems[Path(m).stem]} and {m} share the name {Path(m).stem!r}, which "
                                  f"names their run folders and table rows: one would train into the other's runs; "
                                  f"rename the preset file")
        for c in self.conditions:
            if c not in CONDITIONS:
                raise ConfigError(f"--conditions: unknown condition {c!r}; choose from {', '.join(CONDITIONS)}")
            if self.conditions.count(c) > 1:  # each run would be counted twice in its row: n doubled, intervals halved
                raise ConfigError(f"--conditions names {c!r} {self.conditions.count(c)} times; give each condition "
                                  f"once")
        if not self.conditions:
            raise ConfigError("--conditions is empty; pass e.g. --conditions unmatched,matched")
        # Every count is bounded as `data synthscapes` and `train` bound it: --size 10**11 was a numpy MemoryError
        # traceback, and --num-test, --batch-size or --first-seed out of range failed only after the segmenter trained.
        bounds = {"seeds": (1, MAX_SEEDS), "first_seed": (0, 2**64 - 1), "size": (16, MAX_SIZE),
                  "steps": (1, MAX_STEPS), "batch_size": (1, MAX_BATCH), "num_pool": (8, MAX_IMAGES),
                  "num_test": (1, MAX_IMAGES), "data_seed": (0, 2**64 - 1)}
        for name, (least, most) in bounds.items():
            check_int(getattr(self, name), f"--{name.replace('_', '-')}", least, maximum=most)
        if self.first_seed + self.seeds > 2**64:
            raise ConfigError(f"--first-seed {self.first_seed} with --seeds {self.seeds} runs past the largest seed, "
                              f"2^64 - 1; pass a smaller --first-seed")
        if self.size % 4:
            raise ConfigError(f"--size must be a multiple of 4 and at least 16, got {self.size}")
        check_range(self.matched_mix, "--matched-mix", 0.0, 100.0)

    @property
    def seed_list(self) -> range:
        """The training seeds of every method and condition."""
        return range(self.first_seed, self.first_seed + self.seeds)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> BenchSettings:
        """The settings ``to_dict`` wrote. ValueError saying what is wrong (not a mapping, a key missing or unknown,
        a value of the wrong type); ConfigError for a value out of range."""
        _check_keys(data, cls, "")
        seg = data["segmenter"]
        _check_keys(seg, SegmenterSettings, "segmenter.")
        tuples = {f.name for f in fields(cls) if f.name in ("methods", "conditions", "overrides")}
        data = {f.name: getattr(cls, f.name) for f in fields(cls) if f.name in ADDED_LATER} | data
        for name in tuples:
            if not isinstance(data[name], (list, tuple)) or not all(isinstance(v, str) for v in data[name]):
                raise ValueError(f"{name!r} is {data[name]!r:.60}, not a list of names")
        # The scalar fields' types as annotated (strings, under `from __future__ import annotations`).
        kinds = {f"{prefix}{f.name}": f.type for prefix, c in (("", cls), ("segmenter.", SegmenterSettings))
                 for f in fields(c) if f.type in ("int", "float", "str")}
        for name, value in [*data.items(), *((f"segmenter.{k}", v) for k, v in seg.items())]:
            kind = kinds.get(name)
            ok = {"int": (int,), "float": (int, float), "str": (str,)}.get(str(kind), (object,))
            if isinstance(value, bool) or not isinstance(value, ok):
                raise ValueError(f"{name!r} is {value!r:.60}, not {'a number' if kind == 'float' else kind}")
        values: dict[str, Any] = {k: tuple(v) if k in tuples else v for k, v in data.items() if k != "segmenter"}
        return cls(**values, segmenter=SegmenterSettings(**seg))


# Settings added after the format began: a settings.json written before lacks them and takes their default.
ADDED_LATER = frozenset({"first_seed"})


def _check_keys(data: Any, cls: type, prefix: str) -> None:
    """ValueError unless ``data`` is a mapping with exactly the fields of dataclass ``cls`` (named with ``prefix``)."""
    if not isinstance(data, dict):
        raise ValueError(f"{prefix.rstrip('.') or 'it'} holds {type(data).__name__} {data!r:.40}, not a mapping of "
                         f"settings")
    names = [f.name for f in fields(cls)]
    missing = [prefix + n for n in names if n not in data and prefix + n not in ADDED_LATER]
    unknown = [prefix + str(k) for k in data if k not in names]
    if missing or unknown:
        parts = ([f"lacks {', '.join(map(repr, missing))}"] if missing else []) + \
            ([f"has unknown {', '.join(map(repr, unknown))}"] if unknown else [])
        raise ValueError(" and ".join(parts))


# CPU: about 2 s per 10 steps of CUT at 64 px on 2 cores; GPU: full-size networks at 128 px.
# DRIT's content discriminator has 3 stride-2 layers for its public 216 px crops, which images of
# 64 or 128 px cannot pass (their content codes are 16 or 32 px); each profile keeps the deepest that
# fits (method.content_dis_layers applies to DRIT only, see `overrides_for`).
PROFILES: dict[str, dict[str, Any]] = {
    "cpu": dict(size=64, steps=600, num_pool=400, num_test=64,
                overrides=("model.ngf=32", "model.ndf=32", "model.n_blocks=6", "method.num_patches=64",
                           "method.content_dis_layers=1"),
                segmenter=SegmenterSettings(size=64, steps=1200, width=24)),
    # Long enough for Eq. 3 to act (issue 21): the cpu profile's data, size and scorer with half-width networks in
    # bf16 and 4000 steps, about 33 epochs of domain A; SRUNIT's Eq. 3 is on for 3000 of them at its default start.
    "long": dict(size=64, steps=4000, num_pool=400, num_test=64,
                 overrides=("model.ngf=16", "model.ndf=16", "model.n_blocks=6", "method.num_patches=64",
                            "method.content_dis_layers=1", "train.precision=bf16"),
                 segmenter=SegmenterSettings(size=64, steps=1200, width=24)),
    "gpu": dict(size=128, steps=10000, num_pool=2000, num_test=200, overrides=("method.content_dis_layers=2",),
                segmenter=SegmenterSettings(size=128, num_images=1024, steps=3000, width=32)),
}


def scorer_settings(size: int) -> SegmenterSettings:
    """The SynthScapes scorer of images of ``size`` px (`srunit eval seg --segmenter synthscapes`): the segmenter of
    the first profile of that size, which the benchmark scores with (so its cache is shared), else the default
    settings at that size. The 64 px scorer of every size scored the exact renderings of 32 or 128 px data about
    25 mIoU points low."""
    for settings in PROFILES.values():
        if settings["size"] == size:
            return settings["segmenter"]
    return SegmenterSettings(size=size)


def profile_settings(profile: str, *, segmenter_steps: int | None = None, segmenter_images: int | None = None,
                     **changes: Any) -> BenchSettings:
    """Settings of a named profile (``cpu`` or ``gpu``) with ``changes`` applied (None = keep).

    The segmenter always works at the benchmark's image size; ``segmenter_steps`` and
    ``segmenter_images`` change its training length and set size.
    """
    if not isinstance(profile, str) or profile not in PROFILES:  # a list was "unhashable type: 'list'"
        raise ConfigError(f"--profile: unknown profile {profile!r:.80}; choose from {', '.join(PROFILES)}")
    for key in ("methods", "conditions", "overrides"):  # one string was read as its characters: methods 'c', 'u', 't'
        check_not_one(changes.get(key), f"profile_settings: {key}", "strings")
    base = dict(PROFILES[profile])
    base.update({k: v for k, v in changes.items() if v is not None})
    base["methods"] = expand_methods(tuple(base.get("methods", BenchSettings.methods)))
    # The profile's own method options are kept only where a compared method has them (DRIT's).
    own = set(PROFILES[profile]["overrides"])
    known = set(preset_names())
    if all(m in known or Path(m).is_file() for m in base["methods"]):  # else BenchSettings names the unknown one
        base["overrides"] = tuple(o for o in base["overrides"]
                                  if o not in own or any(overrides_for(m, (o,)) for m in base["methods"]))
    seg = base["segmenter"]
    for option, value in (("--segmenter-steps", segmenter_steps), ("--segmenter-images", segmenter_images)):
        if value is not None:
            check_int(value, option, 1, maximum=MAX_STEPS if option == "--segmenter-steps" else MAX_IMAGES)
    # The segmenter takes the benchmark's size: checked here under the option's name, before SegmenterSettings
    # checks it under its own.
    check_int(base["size"], "--size", MIN_SIZE, maximum=MAX_SIZE)
    base["segmenter"] = replace(seg, size=base["size"], steps=segmenter_steps or seg.steps,
                                num_images=segmenter_images or seg.num_images)
    return BenchSettings(**base)
