"""FID and KID between two image folders, computed with torchmetrics.

The paper argues these scores mislead for this task; they are offered because users expect them.
Features come either from an injected ``torch.nn.Module`` (images in, ``(N, D)`` features out) or
from an Inception-v3 weights file the user has on disk. Nothing is ever downloaded.

Weights files accepted by ``load_inception``:

* ``*.pth`` -- the torch-fidelity state dict ``pt_inception-2015-12-05-6726825d.pth``, run through
  torchmetrics' ``NoTrainInceptionV3`` (needs the ``torch-fidelity`` package, which imports
  ``torchvision``; that must import beside the installed torch).
* anything else (e.g. ``inception-2015-12-05.pt``) -- the TorchScript Inception-v3 of the
  StyleGAN2-ADA / clean-fid tools, loaded with ``torch.jit.load`` and called as
  ``model(x, return_features=True)`` on uint8-range float images (it resizes to 299 itself).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srunit._progress import progress_bar
from srunit._reading import check_regular_file
from srunit.checks import MAX_BATCH, MAX_STEPS, check_flag, check_int, check_path
from srunit.data.files import nested_folders, scan_images
from srunit.data.images import load_rgb, warn_of_several_frames
from srunit.errors import ConfigError, DataError, first_line
from srunit.runtime.device import resolve_device

log = logging.getLogger(__name__)

INCEPTION_FEATURES = 2048
STANDARD_WEIGHT_FILES = ("pt_inception-2015-12-05-6726825d.pth", "inception-2015-12-05.pt")
MAX_KID_SUBSETS = 10_000  # random subsets KID averages over: 100 by default; each costs a kernel of the subset size
# torch's generators take 64-bit seeds, negative ones as their two's complement: 2**70 was "Overflow when unpacking"
MIN_SEED, MAX_SEED = -(2**63), 2**64 - 1
FEATURE_CONTRACT = ("a torch.nn.Module mapping uint8 (N, 3, H, W) images to (N, D) finite features, with an optional "
                    "int num_features attribute equal to D")


@dataclass(frozen=True)
class FidKidScores:
    fid: float
    kid_mean: float
    kid_std: float
    num_real: int
    num_fake: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Frechet distance ``||mu1-mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})`` between two Gaussians.

    Computed with ``scipy.linalg.sqrtm`` in float64 (torchmetrics has no public function for this;
    its ``_compute_fid`` is private). Imaginary parts from numerical error are dropped; a singular
    product gets a small diagonal offset, as is usual for FID; float error below 0 is 0.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"frechet_distance: shapes do not match: mu1 {mu1.shape}, mu2 {mu2.shape}, "
            f"sigma1 {s1.shape}, sigma2 {s2.shape}; expected (D,) means and (D, D) covariances"
        )
    for name, value in (("mu1", mu1), ("sigma1", s1), ("mu2", mu2), ("sigma2", s2)):
        if not np.isfinite(value).all():  # sqrtm and the trace would give nan, a score no table should show
            raise ValueError(f"frechet_distance: {name} holds {int((~np.isfinite(value)).sum())} non-finite value(s); "
                             f"the features it was computed from hold nan or inf")
    from scipy import linalg  # imported here: only FID needs it, and it is slow to import

    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)
    # A squared distance, so never below 0: for two copies of one folder (singular covariances) the square root's
    # float error came out about -1e-6, printed as "FID -0.0000".
    return max(0.0, float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)))


class _TorchScriptInception(torch.nn.Module):
    """Wrap a TorchScript Inception-v3 (``forward(x, return_features=True)``) as an ``(N, 2048)`` extractor."""

    num_features = INCEPTION_FEATURES

    def __init__(self, scripted: torch.nn.Module) -> None:
        super().__init__()
        self.net = scripted

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x.float(), return_features=True)
        return out.reshape(x.shape[0], -1)


def _missing_weights(path: Path) -> ConfigError:
    return ConfigError(
        f"Inception weights file {path} does not exist. No download happens at run time: get the "
        f"standard Inception-v3 FID weights ({' or '.join(STANDARD_WEIGHT_FILES)}) yourself, e.g. from "
        f"the torch-fidelity or clean-fid releases, and pass its local path."
    )


def load_inception(weights: str | Path) -> torch.nn.Module:
    """Build the Inception-v3 feature extractor (``(N,3,H,W)`` uint8 -> ``(N, 2048)``) from a local file.

    Raises:
        ConfigError: the file is missing, cannot be loaded, or its loader library is unusable.
    """
    path = Path(weights).expanduser()
    if not path.exists():  # a FIFO, a device or a folder exists: check_regular_file names what it is
        raise _missing_weights(path)
    check_regular_file(path, "Inception weights", error=ConfigError, fix=f"pass the weights file itself, e.g. "
                       f"{STANDARD_WEIGHT_FILES[1]}")
    if path.suffix == ".pth":
        try:
            import torch_fidelity  # noqa: F401  (NoTrainInceptionV3 is empty without it)
            from torchmetrics.image.fid import NoTrainInceptionV3
        except Exception as e:  # ImportError, or torchvision failing inside torch-fidelity
            raise ConfigError(
                f"Inception weights {path} (.pth state dict) need the torch-fidelity package, which failed "
                f"to import ({type(e).__name__}: {e}). Install torch-fidelity with a torchvision that matches "
                f"the installed torch, or pass the TorchScript file {STANDARD_WEIGHT_FILES[1]} instead."
            ) from e
        try:
            model = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=[str(INCEPTION_FEATURES)],
                feature_extractor_weights_path=str(path),
            )
        except Exception as e:
            raise ConfigError(f"cannot load Inception weights {path} as a torch-fidelity state dict: {e}") from e
        model.num_features = INCEPTION_FEATURES
        return model
    try:
        with warnings.catch_warnings():  # torch deprecates TorchScript; the standard Inception weights are one
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise ConfigError(
            f"cannot load Inception weights {path} as TorchScript ({type(e).__name__}: {e}); expected "
            f"{STANDARD_WEIGHT_FILES[1]} (TorchScript) or {STANDARD_WEIGHT_FILES[0]} (.pth state dict)"
        ) from e
    return _probed(_TorchScriptInception(scripted).eval(), path)


def _probed(net: torch.nn.Module, path: Path) -> torch.nn.Module:
    """``net`` if it maps two small uint8-range images to (2, 2048) finite features, as Inception-v3's pool
    features are; else a ConfigError: FID from another network's outputs would be a number, and garbage."""
    x = torch.linspace(0, 255, 2 * 3 * 64 * 64).reshape(2, 3, 64, 64).round().to(torch.uint8)
    fix = (f"pass the Inception-v3 FID weights ({' or '.join(STANDARD_WEIGHT_FILES)}), the network FID is defined "
           f"with")
    try:
        with torch.inference_mode():
            out = net(x)
    except Exception as e:  # noqa: BLE001 - any network that does not take Inception's call
        raise ConfigError(f"{path} is not an Inception-v3 FID network: calling it as one (images, return_features="
                          f"True) failed ({type(e).__name__}: {first_line(e)}); {fix}") from None
    shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
    if shape != (2, INCEPTION_FEATURES):
        raise ConfigError(f"{path} is not an Inception-v3 FID network: it gives features of shape {shape} for 2 "
                          f"images, not (2, {INCEPTION_FEATURES}); {fix}")
    if not torch.isfinite(out).all():
        raise ConfigError(f"{path}: its features hold NaN or inf values; the weights are damaged: {fix}")
    return net


class _CheckedFeatures(torch.nn.Module):
    """The feature network of `fid_kid` (``name``: "fid_kid: feature", or the Inception file) with its contract checked
    on every batch: (N, D) finite features for N images, D the same each time (``num_features`` where declared). A
    module returning (N,), a wrong ``num_features`` or NaN were torch's own errors from inside torchmetrics
    (`output with shape [1] doesn't match the broadcast shape [4]`), or FID 0.0 (a perfect score) for NaN features."""

    def __init__(self, net: torch.nn.Module, name: str, num_features: int | None) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.width = num_features  # D: declared, else taken from the first call (torchmetrics' probe pass)
        if num_features is not None:
            self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        count = x.shape[0]
        if not torch.is_tensor(out):
            raise TypeError(f"{self.name} returned {type(out).__name__} for {count} image(s), not a tensor; it must be "
                            f"{FEATURE_CONTRACT}")
        declared = " (its num_features attribute)" if hasattr(self, "num_features") else ""
        if out.ndim != 2 or out.shape[0] != count or (self.width is not None and out.shape[1] != self.width):
            want = f"({count}, {self.width})" if self.width is not None else f"({count}, D)"
            fix = (f"; set num_features to {out.shape[1]} or remove the attribute (a probe pass then finds D)"
                   if declared and out.ndim == 2 and out.shape[0] == count else "")
            raise ValueError(f"{self.name} returned features of shape {tuple(out.shape)} for {count} image(s), not "
                             f"{want}{declared}; it must be {FEATURE_CONTRACT}{fix}")
        if not torch.isfinite(out).all():
            bad = int((~torch.isfinite(out)).sum())
            raise ValueError(f"{self.name} returned {bad} NaN or inf value(s) among the features of {count} image(s); "
                             f"FID and KID of such features mean nothing (NaN read as FID 0.0): it must be "
                             f"{FEATURE_CONTRACT}; check the module with these images (an untrained or damaged "
                             f"network, a division by zero)")
        self.width = out.shape[1]
        return out


def _declared_features(feature: Any) -> int | None:
    """The ``num_features`` that ``feature`` declares (an int, or a one-value integer tensor, as torchmetrics takes),
    or None where it declares none; TypeError/ValueError naming `feature` where it is not a module or the attribute
    is not a positive integer."""
    if not isinstance(feature, torch.nn.Module):  # a plain function: "'function' object has no attribute 'to'"
        named = getattr(feature, "__qualname__", None)  # a function's repr holds its address
        shown = f"{type(feature).__name__} {named}" if isinstance(named, str) else f"{type(feature).__name__} " \
            f"{feature!r:.60}"
        raise TypeError(f"fid_kid: feature must be {FEATURE_CONTRACT}; got {shown} (a function can be wrapped: a "
                        f"torch.nn.Module subclass whose forward(x) returns it)")
    if not hasattr(feature, "num_features"):
        return None
    declared: Any = feature.num_features
    if torch.is_tensor(declared) and declared.numel() == 1 and not declared.is_floating_point() \
            and not declared.is_complex() and declared.dtype != torch.bool:
        declared = int(declared.item())
    if isinstance(declared, bool) or not isinstance(declared, int):
        raise TypeError(f"fid_kid: feature.num_features must be an int (the feature count D), got "
                        f"{type(declared).__name__} {declared!r:.60}; set it to D or remove it (a probe pass then "
                        f"finds D)")
    if declared < 1:
        raise ValueError(f"fid_kid: feature.num_features must be 1 or more (the feature count D), got {declared}; set "
                         f"it to D or remove it (a probe pass then finds D)")
    return declared


def _batches(paths: list[Path], batch_size: int):
    """Yield uint8 ``(B,3,H,W)`` tensors; a batch ends early when the image size changes."""
    batch: list[torch.Tensor] = []
    for p in paths:
        arr = np.asarray(load_rgb(p), dtype=np.uint8)
        t = torch.from_numpy(arr.copy()).permute(2, 0, 1)
        if batch and (len(batch) >= batch_size or batch[0].shape != t.shape):
            yield torch.stack(batch)
            batch = []
        batch.append(t)
    if batch:
        yield torch.stack(batch)


def fid_kid(
    real_dir: str | Path,
    fake_dir: str | Path,
    *,
    weights: Path | None = None,
    feature: torch.nn.Module | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    seed: int = 0,
    show_progress: bool = False,
) -> FidKidScores:
    """FID and KID (mean, std over ``kid_subsets`` random subsets) between two image folders.

    Exactly one of ``weights`` (local Inception-v3 file, see ``load_inception``) and ``feature``
    (a module mapping uint8 ``(N,3,H,W)`` to ``(N, D)``; an int ``num_features`` attribute skips
    a probe pass) must be given. ``kid_subset_size`` is clipped to the smaller set size with a
    warning; it must be at least 2. ``seed`` fixes KID's subset draws. FID needs at least 2 images per folder.
    ``show_progress``: a progress bar of the images read, with the time left, where standard error is a terminal.
    ``real_dir`` and ``fake_dir`` may be one folder (a sanity check of a feature network: FID 0), not one inside
    the other.

    Raises:
        ConfigError: bad options, a missing or wrong weights file, fewer than 2 images in a folder.
        DataError: one folder lies inside the other (its images would be counted in both sets).
        TypeError: ``feature`` is not a module, its ``num_features`` is not an int, or it returns no tensor.
        ValueError: ``feature`` returns features of another shape than (N, D) (D its ``num_features`` where given)
            or NaN/inf values; ``seed`` outside torch's 64-bit seeds.
    """
    if (weights is None) == (feature is None):
        raise ConfigError("fid_kid: give exactly one of `weights` (Inception-v3 file) or `feature` (a module)")
    # Named as the options of `srunit eval fid`; each bounded: --kid-subsets 10**11 computed for ever.
    check_path(real_dir, "fid_kid: real_dir")
    check_path(fake_dir, "fid_kid: fake_dir")
    # One folder against itself is allowed (a sanity check of a feature network); one inside the other counted the
    # inner one's images in both sets ("real 8, fake 4" of 4 real images and their 4 translations), without a word.
    nested = nested_folders(Path(real_dir).expanduser(), "--real", Path(fake_dir).expanduser(), "--fake")
    if nested is not None:
        raise DataError(f"{nested}, so the images of the inner one would be counted in both sets; pass two folders, "
                        f"neither inside the other")
    declared = _declared_features(feature) if feature is not None else None
    check_int(seed, "fid_kid: seed", MIN_SEED, maximum=MAX_SEED,
              fix=f"pass seed an integer from 0 to 2**64 - 1 ({MAX_SEED})")
    check_int(kid_subsets, "--kid-subsets", 1, maximum=MAX_KID_SUBSETS)
    # KID's unbiased estimate divides by m (m - 1): a subset of 1 image gave KID nan, and NaN in the --json record.
    check_int(kid_subset_size, "--kid-subset-size", 2, maximum=MAX_STEPS,
              fix="pass --kid-subset-size 2 or more (KID compares pairs of images within a subset; default 1000)")
    check_int(batch_size, "--batch-size", 1, maximum=MAX_BATCH)
    show_progress = check_flag(show_progress, "fid_kid: show_progress")
    device = resolve_device(str(device), "--device")
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    # The weights first: a missing or wrong file is named before the folders are scanned and their images read.
    if weights is not None:
        net = _CheckedFeatures(load_inception(weights), f"the Inception network of {weights}", INCEPTION_FEATURES)
    else:
        assert feature is not None
        net = _CheckedFeatures(feature, "fid_kid: feature", declared)
    real = scan_images(real_dir, "real images (--real)")
    fake = scan_images(fake_dir, "translated images (--fake)")
    warn_of_several_frames([*real, *fake], "--real or --fake image", "measured")
    if min(len(real), len(fake)) < 2:
        raise ConfigError(
            f"FID/KID need at least 2 images per folder; got {len(real)} in {real_dir} and {len(fake)} in {fake_dir}"
        )
    subset_size = kid_subset_size
    if subset_size > min(len(real), len(fake)):
        subset_size = min(len(real), len(fake))
        log.warning(
            "KID subset size %d is larger than the smaller image set; using %d (real %d, fake %d images)",
            kid_subset_size, subset_size, len(real), len(fake),
        )

    net = net.to(device).eval()
    fid = FrechetInceptionDistance(feature=net, normalize=False).to(device)
    with warnings.catch_warnings():  # KID keeps every image's features (2048 floats each): what KID is, not news
        warnings.filterwarnings("ignore", message="Metric `Kernel Inception Distance` will save all extracted")
        kid = KernelInceptionDistance(feature=net, subsets=kid_subsets, subset_size=subset_size,
                                      normalize=False).to(device)
    with torch.inference_mode(), progress_bar(len(real) + len(fake), "image", show_progress) as bar:
        for paths, is_real in ((real, True), (fake, False)):
            for x in _batches(paths, batch_size):
                bar.update(len(x))
                x = x.to(device)
                fid.update(x, real=is_real)
                kid.update(x, real=is_real)
        fid_value = max(0.0, float(fid.compute()))  # a squared distance: float error below 0 (copies of a folder) is 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            kid_mean, kid_std = kid.compute()
    return FidKidScores(
        fid=fid_value,
        kid_mean=float(kid_mean),
        kid_std=float(kid_std),
        num_real=len(real),
        num_fake=len(fake),
    )
