"""From-scratch baselines sized for 48x48 grey faces: an MLP on raw pixels and a small VGG-style CNN."""

from torch import nn

from fer.models.adapt import required_option
from fer.models.input_spec import FROM_SCRATCH, Normalization


def build_mlp(num_classes, image_size, pretrained, dropout, **options) -> tuple[nn.Module, Normalization]:
    hidden = required_option("mlp", options, "hidden")
    layers: list[nn.Module] = [nn.Flatten()]
    in_features = image_size * image_size
    for width in hidden:
        layers += [
            nn.Linear(in_features, width, bias=False),  # BatchNorm right after has its own bias
            nn.BatchNorm1d(width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        ]
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers), FROM_SCRATCH


def build_cnn(num_classes, image_size, pretrained, dropout, **options) -> tuple[nn.Module, Normalization]:
    widths = required_option("cnn", options, "widths")
    layers: list[nn.Module] = []
    in_channels = 1
    for width in widths:
        layers += [*_conv_bn_relu(in_channels, width), *_conv_bn_relu(width, width), nn.MaxPool2d(2)]
        in_channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(in_channels, num_classes)]
    return nn.Sequential(*layers), FROM_SCRATCH


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    # no conv bias: the BatchNorm right after has its own
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
