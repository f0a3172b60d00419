#!/usr/bin/env python3
"""Write the sample photos in Samples/ and the reference numbers for the composite.

Writes:
  Samples/cat.jpg                        skimage.data.chelsea()  (451x300)
  Samples/coffee.jpg                     skimage.data.coffee()   (600x400)
  Samples/cat-and-coffee.jpg             450x300 composite: left half the cat's face, right half the cup
  Samples/cat-and-coffee.input.npy       the composite (decoded from the written JPEG by Pillow) preprocessed
                                         as Models/efficientnet-lite0.json says: Resize(shorter side = 256,
                                         bilinear, antialias) + CenterCrop(224) + ToTensor + Normalize(mean, std);
                                         float32 [1,3,224,224]
  Samples/cat-and-coffee.expected.json   top-5 (index, label, logit, probability) from ONNX Runtime
  Samples/README.md                      provenance and licence

The composite is chosen so that the centre crop the model sees still holds both objects: with a 2:1 image
(600x300) Resize(256)+CenterCrop(224) keeps only the middle 44% of the width. At 450x300 the bundled
model's top-5 contains a cat class (285 'Egyptian cat') and a coffee class (967 'espresso', 968 'cup').

Requires Models/ from Scripts/make_bundled_model.py. Run from anywhere: python Scripts/make_samples.py
"""
import io
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image
import skimage
from skimage import data

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SAMPLES = os.path.join(ROOT, "Samples")
MODELS = os.path.join(ROOT, "Models")
JPEG_QUALITY = 92
COMPOSITE_SIZE = (450, 300)   # width, height
CAT_CENTER_X = 0.48           # horizontal centre of the cat tile, as a fraction of the scaled photo width
COFFEE_CENTER_X = 0.42        # same for the coffee tile


def tile(img: Image.Image, center_x: float, width: int, height: int) -> Image.Image:
    """Scale `img` to `height` (Lanczos) and cut a `width`-wide strip centred at `center_x`."""
    scaled_w = round(img.width * height / img.height)
    scaled = img.resize((scaled_w, height), Image.LANCZOS)
    x0 = int(np.clip(center_x * scaled_w - width / 2, 0, scaled_w - width))
    return scaled.crop((x0, 0, x0 + width, height))


def composite() -> Image.Image:
    w, h = COMPOSITE_SIZE
    out = Image.new("RGB", (w, h))
    out.paste(tile(Image.fromarray(data.chelsea()), CAT_CENTER_X, w // 2, h), (0, 0))
    out.paste(tile(Image.fromarray(data.coffee()), COFFEE_CENTER_X, w - w // 2, h), (w // 2, 0))
    return out


def preprocess(img: Image.Image, sidecar: dict) -> np.ndarray:
    from torchvision import transforms
    tf = transforms.Compose([
        transforms.Resize(sidecar["resize"], interpolation=transforms.InterpolationMode.BILINEAR, antialias=True),
        transforms.CenterCrop(sidecar["inputSize"]),
        transforms.ToTensor(),
        transforms.Normalize(sidecar["mean"], sidecar["std"]),
    ])
    return np.ascontiguousarray(tf(img.convert("RGB")).unsqueeze(0).numpy().astype("<f4"))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def main():
    os.makedirs(SAMPLES, exist_ok=True)
    Image.fromarray(data.chelsea()).save(os.path.join(SAMPLES, "cat.jpg"), quality=JPEG_QUALITY)
    Image.fromarray(data.coffee()).save(os.path.join(SAMPLES, "coffee.jpg"), quality=JPEG_QUALITY)
    comp_path = os.path.join(SAMPLES, "cat-and-coffee.jpg")
    composite().save(comp_path, quality=JPEG_QUALITY)

    with open(os.path.join(MODELS, "efficientnet-lite0.json")) as f:
        sidecar = json.load(f)
    labels = open(os.path.join(MODELS, sidecar["labels"])).read().splitlines()
    sess = ort.InferenceSession(os.path.join(MODELS, "efficientnet-lite0.onnx"), providers=["CPUExecutionProvider"])

    results = {}
    for name in ("cat", "coffee", "cat-and-coffee"):
        img = Image.open(os.path.join(SAMPLES, name + ".jpg"))   # decode what was written
        x = preprocess(img, sidecar)
        logits = sess.run(None, {sidecar["input"]: x})[0][0]
        p = softmax(logits)
        top = np.argsort(-p)[:10]
        print(f"{name}.jpg ({img.width}x{img.height}) top-10:")
        for i in top:
            print(f"   {i:4d}  {p[i]*100:6.2f}%  logit {logits[i]:7.3f}  {labels[i]}")
        results[name] = (x, logits, p, top)

    x, logits, p, top = results["cat-and-coffee"]
    np.save(os.path.join(SAMPLES, "cat-and-coffee.input.npy"), x, allow_pickle=False)
    expected = {
        "image": "cat-and-coffee.jpg",
        "model": "Models/efficientnet-lite0.onnx",
        "input": "cat-and-coffee.input.npy",
        "preprocessing": "PIL decode; torchvision Resize(%d, bilinear, antialias=True) + CenterCrop(%d) + ToTensor + Normalize(mean=%s, std=%s)"
                         % (sidecar["resize"], sidecar["inputSize"][0], sidecar["mean"], sidecar["std"]),
        "runtime": "onnxruntime %s CPUExecutionProvider" % ort.__version__,
        "top5": [{"index": int(i), "label": labels[i], "logit": float(logits[i]), "probability": float(p[i])}
                 for i in top[:5]],
    }
    with open(os.path.join(SAMPLES, "cat-and-coffee.expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")

    cat_ok = any(281 <= i <= 285 for i in top[:5])
    cup_ok = any(i in (967, 968, 504) for i in top[:5])
    write_readme()
    if not (cat_ok and cup_ok):
        print("WARNING: composite's top-5 lacks a cat or a coffee class", file=sys.stderr)
        sys.exit(1)


def write_readme():
    w, h = COMPOSITE_SIZE
    text = f"""# Sample photos

| File | What | Size | Source |
|------|------|------|--------|
| `cat.jpg` | Chelsea the cat | 451×300 | `skimage.data.chelsea()` (scikit-image {skimage.__version__}, `skimage/data/chelsea.png`) |
| `coffee.jpg` | A cup of espresso | 600×400 | `skimage.data.coffee()` (scikit-image {skimage.__version__}, `skimage/data/coffee.png`) |
| `cat-and-coffee.jpg` | Both side by side: left the cat's face, right the cup | {w}×{h} | composite of the two above |
| `cat-and-coffee.input.npy` | the composite preprocessed for `Models/efficientnet-lite0.onnx`, float32 [1,3,224,224] NCHW | | |
| `cat-and-coffee.expected.json` | ONNX Runtime's top-5 (index, label, logit, probability) on that tensor | | |

All files are generated by `Scripts/make_samples.py` (JPEG quality {JPEG_QUALITY}, Pillow encoder).
The tensor is computed from the JPEG as Pillow decodes it; another JPEG decoder (e.g. libjpeg-turbo with
a different IDCT) may differ by a grey level or so in some pixels, so compare the tensor with a tolerance
or feed `cat-and-coffee.input.npy` directly when the exact numbers matter.

Preprocessing (from `Models/efficientnet-lite0.json`): resize the shorter side to 256 (bilinear,
antialiased), centre-crop 224×224, scale to 0…1, subtract mean 127/255 and divide by std 128/255 per channel.

## Provenance and licence

Both photographs come from scikit-image's bundled sample data. The docstrings in
`skimage/data/_fetchers.py` (scikit-image {skimage.__version__}) say:

> `chelsea()`: "Chelsea the cat. [...] No copyright restrictions.  CC0 by the photographer (Stefan van der Walt)."

> `coffee()`: "Coffee cup. This photograph is courtesy of Pikolo Espresso Bar. [...]
> No copyright restrictions.  CC0 by the photographer (Rachel Michetti)."

They are therefore dedicated to the public domain (CC0 1.0); the composite and the re-encoded JPEGs
are likewise offered under CC0. scikit-image itself is BSD-3-Clause.
"""
    with open(os.path.join(SAMPLES, "README.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
