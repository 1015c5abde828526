"""srunit.inference: native resolution, batching, precision, option checks, checkpoints of the public code,
and (on a GPU) CUDA against the CPU."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srunit.data import load_rgb
from srunit.errors import CheckpointError, ConfigError, DataError
from srunit.inference import Translator, load_generator
from srunit.networks import ResnetGenerator
from srunit.runtime.network_files import save_network

# Key names and shapes of a default generator saved by the public CUT/SRUNIT code (ngf=64,
# 9 blocks, anti-aliased): its flat `model` Sequential, as listed from such a state dict.
PUBLIC_KEYS = (
    [("model.1.weight", (64, 3, 7, 7)), ("model.1.bias", (64,)), ("model.4.weight", (128, 64, 3, 3)),
     ("model.4.bias", (128,)), ("model.7.filt", (128, 1, 3, 3)), ("model.8.weight", (256, 128, 3, 3)),
     ("model.8.bias", (256,)), ("model.11.filt", (256, 1, 3, 3))]
    + [(f"model.{i}.conv_block.{j}.{p}", (256, 256, 3, 3) if p == "weight" else (256,))
       for i in range(12, 21) for j in (1, 5) for p in ("weight", "bias")]
    + [("model.21.filt", (256, 1, 4, 4)), ("model.22.weight", (128, 256, 3, 3)), ("model.22.bias", (128,)),
       ("model.25.filt", (128, 1, 4, 4)), ("model.26.weight", (64, 128, 3, 3)), ("model.26.bias", (64,)),
       ("model.30.weight", (3, 64, 7, 7)), ("model.30.bias", (3,))]
)


def _public_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in PUBLIC_KEYS:
        if key.endswith("filt"):  # the fixed binomial filters, per channel
            row = torch.tensor([1.0, 2.0, 1.0]) if shape[-1] == 3 else torch.tensor([1.0, 3.0, 3.0, 1.0])
            k = torch.outer(row, row)
            k = k / k.sum() * (1 if shape[-1] == 3 else 4)
            state[key] = k.expand(shape).clone()
        else:
            state[key] = torch.randn(shape, generator=g) * 0.05
    return state


def test_public_generator_checkpoint_loads_and_matches_native(tmp_path: Path) -> None:
    assert len(PUBLIC_KEYS) == 52
    state = _public_state_dict()
    path = tmp_path / "latest_net_G.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)  # saved from DataParallel
    loaded = load_generator(path)
    native = ResnetGenerator()
    own = native.state_dict()
    assert len(own) == len(state)
    for key, value in state.items():  # place each public tensor at the same position by hand
        own[key.replace("model.", "layers.", 1)].copy_(value)
    torch.manual_seed(0)
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), native(x))
    # And through the translator (native resolution, padded to 4 and cropped back).
    out = Translator(loaded, torch.device("cpu")).translate_tensor(torch.rand(1, 3, 37, 45) * 2 - 1)
    assert out.shape == (1, 3, 37, 45)


def _public_cyclegan_state_dict(ngf: int, seed: int, running_stats: bool) -> dict[str, torch.Tensor]:
    """A generator state dict as the public CycleGAN code saves it (resnet_9blocks, instance norm, no
    dropout): `model.N` with stride-2 convs at 4 and 7, blocks at 10..18, transposed convs at 19 and 22,
    the last conv at 26. ``running_stats``: the instance-norm statistics some of its checkpoints carry."""
    g = torch.Generator().manual_seed(seed)
    shapes = {1: (ngf, 3, 7, 7), 4: (2 * ngf, ngf, 3, 3), 7: (4 * ngf, 2 * ngf, 3, 3),
              19: (4 * ngf, 2 * ngf, 3, 3), 22: (2 * ngf, ngf, 3, 3), 26: (3, ngf, 7, 7)}  # transposed: (in, out)
    state = {}
    for i, shape in shapes.items():
        state[f"model.{i}.weight"] = torch.randn(shape, generator=g) * 0.05
        state[f"model.{i}.bias"] = torch.randn(shape[1] if i in (19, 22) else shape[0], generator=g) * 0.05
    for i in range(10, 19):
        for j in (1, 5):
            state[f"model.{i}.conv_block.{j}.weight"] = torch.randn(4 * ngf, 4 * ngf, 3, 3, generator=g) * 0.05
            state[f"model.{i}.conv_block.{j}.bias"] = torch.randn(4 * ngf, generator=g) * 0.05
    if running_stats:
        for i, ch in ((2, ngf), (5, 2 * ngf), (8, 4 * ngf), (20, 2 * ngf), (23, ngf)):
            state[f"model.{i}.running_mean"], state[f"model.{i}.running_var"] = torch.zeros(ch), torch.ones(ch)
            state[f"model.{i}.num_batches_tracked"] = torch.tensor(0)
    return state


@pytest.mark.parametrize("running_stats", [False, True])
def test_public_cyclegan_generators_load_and_match_native(tmp_path: Path, running_stats: bool) -> None:
    """*_net_G_A.pth (A -> B) and *_net_G_B.pth (B -> A) of the public CycleGAN code translate as our
    generator without anti-aliasing, with the same weights placed by hand."""
    x = torch.rand(1, 3, 36, 44, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for seed, name in enumerate(("latest_net_G_A.pth", "latest_net_G_B.pth")):
        state = _public_cyclegan_state_dict(8, seed, running_stats)
        torch.save(state, tmp_path / name)
        loaded = load_generator(tmp_path / name)
        native = ResnetGenerator(ngf=8, antialias=False, antialias_up=False)
        own = native.state_dict()
        assert len(own) == 48
        for key, value in state.items():
            if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
                continue
            own[key.replace("model.", "layers.", 1)].copy_(value)
        assert loaded.config == native.config
        with torch.no_grad():
            assert torch.equal(loaded(x), native(x))
        out = Translator(loaded, torch.device("cpu")).translate_tensor(torch.rand(1, 3, 37, 45) * 2 - 1)
        assert out.shape == (1, 3, 37, 45)
    # --direction picks a generator of a run folder; a file is the generator itself: BtoA only for a B -> A file.
    load_generator(tmp_path / "latest_net_G_B.pth", direction="BtoA")
    with pytest.raises(ConfigError, match=r"--direction BtoA picks the B -> A generator, but .*latest_net_G_A.pth "
                                          r"holds the A -> B generator"):
        load_generator(tmp_path / "latest_net_G_A.pth", direction="BtoA")
    with pytest.raises(ConfigError, match=r"--direction: invalid value 'AB'; allowed: AtoB, BtoA"):
        load_generator(tmp_path / "latest_net_G_A.pth", direction="AB")


def test_public_checkpoint_loading_runs_no_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil_net_G.pth"
    torch.save({"model.1.weight": Evil()}, path)
    with pytest.raises(CheckpointError, match="never code"):
        load_generator(path)


def test_translator_native_resolution_and_batching(tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6)
    weights = tmp_path / "G.safetensors"
    save_network(g, weights, "ResnetGenerator")
    tr = Translator.from_checkpoint(weights, device="cpu")
    imgs = [Image.new("RGB", (45, 37), (200, 10, 10)), Image.new("L", (20, 20), 128), Image.new("RGB", (45, 37))]
    out = tr.translate_images(imgs, batch_size=2)
    assert [o.size for o in out] == [(45, 37), (20, 20), (45, 37)]
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(tr.translate_tensor(x), g(x), atol=1e-6)
    bf16 = Translator.from_checkpoint(weights, device="cpu", precision="bf16").translate_tensor(x)
    assert (bf16 - g(x)).abs().max() < 0.1


def test_translate_bad_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        load_generator(tmp_path / "empty")
    bad = tmp_path / "x_net_G.pth"
    torch.save({"foo": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="not a ResnetGenerator"):
        load_generator(bad)


@pytest.fixture
def tiny_generator(tmp_path: Path) -> tuple[ResnetGenerator, Path]:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6).eval()
    weights = tmp_path / "G.safetensors"
    save_network(g, weights, "ResnetGenerator")
    return g, weights


def test_bad_options_are_config_errors_naming_the_option(tiny_generator, tmp_path: Path) -> None:
    _, weights = tiny_generator
    with pytest.raises(ConfigError, match=re.escape("--precision: invalid value 'fp64'; allowed: fp32, bf16, fp16")):
        Translator.from_checkpoint(weights, device="cpu", precision="fp64")
    with pytest.raises(ConfigError, match=re.escape("--device: invalid value 'gpu0'")):
        Translator.from_checkpoint(weights, device="gpu0")
    tr = Translator.from_checkpoint(weights, device="cpu")
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    for batch_size in (0, -1, 1.5):
        says = f"--batch-size must be an integer from 1 to 65,536, got {batch_size!r}"
        with pytest.raises(ConfigError, match=re.escape(says)):
            tr.translate_folder(tmp_path / "a.png", tmp_path / "out", batch_size=batch_size)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="--batch-size"):
            tr.translate_images([Image.new("RGB", (8, 8))], batch_size=batch_size)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_translate_folder_mirrors_subfolders_as_png(tiny_generator, tmp_path: Path) -> None:
    g, weights = tiny_generator
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.new("RGB", (12, 8), (10, 200, 30)).save(src / "x.jpg")
    Image.new("RGB", (9, 7), (90, 20, 30)).save(src / "sub" / "y.bmp")
    written = Translator.from_checkpoint(weights, device="cpu").translate_folder(src, tmp_path / "out", batch_size=1)
    assert written == [tmp_path / "out" / "sub" / "y.png", tmp_path / "out" / "x.png"]
    with Image.open(written[1]) as img:
        assert img.format == "PNG" and img.size == (12, 8)
        got = np.asarray(img)
    from srunit.data import load_rgb, pil_to_tensor, tensor_to_uint8

    with torch.no_grad():  # 12x8 is already a multiple of 4: the generator's own output, rounded to 8 bits
        expected = tensor_to_uint8(g(pil_to_tensor(load_rgb(src / "x.jpg"))[None])[0])
    np.testing.assert_array_equal(got, expected)


@pytest.fixture
def no_tf32():
    """Full fp32 matmuls and convolutions on the GPU (no TF32), restored afterwards. (Plain assignments:
    these flags are read and written through module __getattr__/__setattr__, which monkeypatch cannot undo.)"""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.gpu
def test_translator_on_cuda_matches_the_cpu(tiny_generator, no_tf32) -> None:
    # With TF32 off only the summation order differs from the CPU.
    _, weights = tiny_generator
    x = torch.rand(2, 3, 37, 45, generator=torch.Generator().manual_seed(1)) * 2 - 1
    cpu = Translator.from_checkpoint(weights, device="cpu").translate_tensor(x)
    gpu = Translator.from_checkpoint(weights, device="cuda")
    assert gpu.device.type == "cuda" and next(gpu.generator.parameters()).is_cuda
    out = gpu.translate_tensor(x)
    assert out.device == x.device and out.dtype == torch.float32 and out.shape == x.shape
    assert torch.allclose(out, cpu, atol=1e-4, rtol=0), (out - cpu).abs().max()
    bf16 = Translator.from_checkpoint(weights, device="cuda", precision="bf16").translate_tensor(x.cuda())
    assert bf16.device.type == "cuda" and bf16.dtype == torch.float32 and bf16.shape == x.shape
    assert torch.isfinite(bf16).all() and (bf16.cpu() - cpu).abs().max() < 0.1


def test_translate_never_writes_sources_and_never_overwrites_unasked(tiny_generator, tmp_path: Path) -> None:
    _, weights = tiny_generator
    tr = Translator.from_checkpoint(weights, device="cpu")
    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(src / "a.png")
    Image.new("RGB", (8, 8), (200, 10, 30)).save(src / "b.jpg")
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    # --output equal to or inside --input: refused, the sources untouched.
    for out in (src, src / "translated"):
        where = "is" if out == src else "is inside"
        with pytest.raises(DataError, match=re.escape(f"--output {out} {where} --input {src}")):
            tr.translate_folder(src, out)
    # A single file translated into its own folder would replace itself (a.png -> a.png).
    with pytest.raises(DataError, match=re.escape(f"the translation of {src / 'a.png'} would replace itself;")):
        tr.translate_folder(src / "a.png", src)
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before and not (src / "translated").exists()
    # a.png and a.jpg give one output name: an error naming both, before anything is written.
    Image.new("RGB", (8, 8)).save(src / "a.jpg")
    clash = f"{src / 'a.jpg'} and {src / 'a.png'} -> {tmp_path / 'out' / 'a.png'}"
    with pytest.raises(DataError, match=re.escape(clash)):
        tr.translate_folder(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (src / "a.jpg").unlink()
    # Existing outputs are replaced only when asked; the refusal writes nothing.
    assert len(tr.translate_folder(src, tmp_path / "out")) == 2
    (tmp_path / "out" / "a.png").write_bytes(b"mine")
    with pytest.raises(DataError, match=r"2 output file\(s\) exist already \(first: .*a.png\); pass --overwrite"):
        tr.translate_folder(src, tmp_path / "out")
    assert (tmp_path / "out" / "a.png").read_bytes() == b"mine"
    tr.translate_folder(src, tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "a.png").read_bytes().startswith(b"\x89PNG")
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary file left


def test_translate_refuses_images_above_the_pixel_limit_up_front(tiny_generator, tmp_path: Path) -> None:
    _, weights = tiny_generator
    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (8, 8)).save(src / "a.png")
    Image.new("RGB", (40, 30)).save(src / "z.png")  # 1200 pixels, translated after a.png
    tr = Translator.from_checkpoint(weights, device="cpu")
    with pytest.raises(
        DataError,
        match=re.escape(
            f"image file {src / 'z.png'} is 40 x 30 = 1,200 pixels, more than "
            "the limit of 1,000; shrink it, or pass --max-pixels 1200"
        ),
    ):
        tr.translate_folder(src, tmp_path / "out", max_pixels=1000)
    assert not (tmp_path / "out").exists()  # a.png was not translated first
    assert len(tr.translate_folder(src, tmp_path / "out", max_pixels=1200)) == 2


# ----------------------------------------------------------------------------- no traceback, no silent garbage

@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 7), (1, 9), (5, 2), (4, 4), (6, 6)])
def test_translate_tensor_takes_images_of_any_size_down_to_one_pixel(tiny_generator, size: tuple[int, int]) -> None:
    g, _ = tiny_generator
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = Translator(g, torch.device("cpu")).translate_tensor(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    big = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(1)) * 2 - 1
    assert torch.equal(Translator(g, torch.device("cpu")).translate_tensor(big), g(big))  # large enough: as before


def test_translate_images_names_arguments_of_the_wrong_type(tiny_generator) -> None:
    g, _ = tiny_generator
    tr = Translator(g, torch.device("cpu"))
    img = Image.new("RGB", (8, 8))
    for bad, what in (("a.png", "str"), (img, "Image"), (torch.zeros(1, 3, 8, 8), "Tensor")):
        with pytest.raises(TypeError, match=rf"translate_images: images must be a list of PIL images, got {what}"):
            tr.translate_images(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"translate_images: images\[1\] must be a PIL image, got str 'b\.png'; "):
        tr.translate_images([img, "b.png"])  # type: ignore[list-item]
    assert [o.size for o in tr.translate_images((img, img))] == [(8, 8), (8, 8)]  # a tuple is a sequence too


def test_a_generator_that_outputs_nan_is_an_error_and_writes_nothing(tiny_generator, tmp_path: Path) -> None:
    g, _ = tiny_generator
    with torch.no_grad():
        g.layers[1].weight.fill_(float("nan"))  # what a damaged checkpoint holds
    weights = tmp_path / "nan" / "G.safetensors"
    save_network(g, weights, "ResnetGenerator")
    tr = Translator.from_checkpoint(weights, device="cpu")
    with pytest.raises(CheckpointError, match=r"the generator's output holds NaN or inf values .*its weights are "
                                              r"damaged"):
        tr.translate_tensor(torch.zeros(1, 3, 8, 8))
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (8, 8)).save(src / "a.png")
    with pytest.raises(CheckpointError, match="NaN or inf"):
        tr.translate_folder(src, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.png")) if (tmp_path / "out").exists() else True


def test_non_finite_input_tensors_are_refused(tiny_generator) -> None:
    g, _ = tiny_generator
    x = torch.zeros(1, 3, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"translate_tensor: x holds NaN or inf values"):
        Translator(g, torch.device("cpu")).translate_tensor(x)


def test_inputs_of_several_frames_are_warned_of(tiny_generator, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """An animated GIF (or a multi-page TIFF) was translated from its first frame without a word."""
    _, weights = tiny_generator
    tr = Translator.from_checkpoint(weights, device="cpu")
    src = tmp_path / "in"
    src.mkdir()
    frames = [Image.new("RGB", (8, 8), c) for c in ((10, 200, 30), (200, 10, 30))]
    frames[0].save(src / "moving.gif", save_all=True, append_images=frames[1:])
    frames[0].save(src / "still.gif")
    frames[0].save(src / "pages.tif", save_all=True, append_images=frames[1:])
    with caplog.at_level("WARNING", logger="srunit"):
        written = tr.translate_folder(src, tmp_path / "out")
    assert sorted(p.name for p in written) == ["moving.png", "pages.png", "still.png"]
    assert "2 input file(s) hold several frames (e.g. " in caplog.text and "still.gif" not in caplog.text
    assert "each is translated from its first frame only" in caplog.text


@pytest.mark.parametrize("cut", [54, 62])
def test_a_gif_cut_after_its_first_frame_is_translated_from_that_frame(tmp_path: Path, cut: int) -> None:
    """Asking a GIF cut inside its second frame whether it is animated raises IndexError or struct.error in PIL; the
    header reader treats it as one frame (load_rgb decodes the first, which is whole)."""
    from srunit.data.images import image_header

    frames = [Image.new("RGB", (8, 8), c) for c in ((10, 200, 30), (200, 10, 30), (1, 2, 3))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    assert len(buf.getvalue()) == 150  # the cuts below lie inside the second frame of this file
    path = tmp_path / "cut.gif"
    path.write_bytes(buf.getvalue()[:cut])
    assert image_header(path) == ((8, 8), False)
    assert load_rgb(path).getpixel((0, 0)) == (10, 200, 30)
