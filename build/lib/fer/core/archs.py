"""The model architectures, by name, and where each one's builder lives (module of fer.models:function).

Kept here, free of torch, so that params.yaml is validated without importing torch or any model library;
`fer.models.build_model` imports a builder only when it is asked for.
"""

ARCH_BUILDERS = {
    "mlp": "baselines:build_mlp",
    "cnn": "baselines:build_cnn",
    "resnet18": "torchvision_models:build_resnet18",
    "mobilenet": "torchvision_models:build_mobilenet",
    "mobilenet_v2": "torchvision_models:build_mobilenet_v2",
    "efficientnet": "torchvision_models:build_efficientnet",
    "efficientnet_lite0": "lite0:build_lite0",
    "vit": "vit:build_vit",
}
ARCHS = tuple(ARCH_BUILDERS)
