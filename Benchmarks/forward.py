#!/usr/bin/env python3
"""Side-by-side forward-pass benchmark: CAMKit vs ONNX Runtime, same machine, same run.

Usage: python3 Benchmarks/forward.py [--runs 20] [--threads 2]
Needs: onnxruntime, torch, torchvision (pip), and a release build of camkit
(`swift build -c release`). ResNet-50 is exported here at run time (random weights: speed does not
depend on them) and not committed; EfficientNet-Lite0 is the bundled model.

Each engine runs in its own process so that peak RSS is measured per engine. ONNX Runtime gets
intra_op_num_threads = --threads; CAMKit gets the same thread count for its kernels and OpenBLAS.
Rows are reported twice for CAMKit: with OPENBLAS_CORETYPE unset (what a user has; OpenBLAS picks
its kernels itself) and with this machine's setting (OPENBLAS_CORETYPE=Haswell), if set.
--builtin adds a column with CAMKit's own convolution kernels only (CAMKIT_CONV_BACKEND=builtin,
no oneDNN). --rounds R repeats every measurement R times, interleaving the engines, and reports
the median of the R medians (use it on a shared machine; the load average is printed).
"""
import argparse, json, os, resource, statistics, subprocess, sys, tempfile, time, platform, datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "Benchmarks", "work")


def export_resnet50(path):
    import torch, torchvision
    model = torchvision.models.resnet50().eval()
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, x, path, dynamo=False, opset_version=17, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


ORT_CHILD = r"""
import json, sys, time, resource, statistics
import numpy as np, onnxruntime as ort
path, batch, runs, warmup, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
t0 = time.perf_counter(); s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"]); load = (time.perf_counter() - t0) * 1e3
x = np.random.rand(batch, 3, 224, 224).astype(np.float32); name = s.get_inputs()[0].name
for _ in range(warmup): s.run(None, {name: x})
ts = []
for _ in range(runs):
    t = time.perf_counter(); s.run(None, {name: x}); ts.append((time.perf_counter() - t) * 1e3)
print(json.dumps({"median": statistics.median(ts), "min": min(ts), "max": max(ts), "load_ms": load,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_ort(path, batch, runs, warmup, threads):
    out = subprocess.run([sys.executable, "-c", ORT_CHILD, path, str(batch), str(runs), str(warmup), str(threads)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


CAMKIT = os.path.join(ROOT, ".build", "release", "camkit")


def run_camkit(path, batch, runs, warmup, threads, coretype, builtin=False):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("CAMKIT_CONV_BACKEND", None)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    if builtin:
        env["CAMKIT_CONV_BACKEND"] = "builtin"
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    exe = CAMKIT
    cmd = ["/usr/bin/env", exe, "benchmark", "--model", path, "--batch", str(batch), "--runs", str(runs),
           "--warmup", str(warmup), "--threads", str(threads), "--no-backward", "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    stats = json.loads(out.strip().splitlines()[-1])
    stats["rss_mb"] = stats["peak_rss_mb"]
    return stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--camkit", default=CAMKIT, help="the camkit executable (default: .build/release/camkit)")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved repetitions per row (median of medians)")
    ap.add_argument("--builtin", action="store_true", help="also time CAMKit's own conv kernels (no oneDNN)")
    ap.add_argument("--models", default="EfficientNet-Lite0,ResNet-50")
    args = ap.parse_args()
    globals()["CAMKIT"] = args.camkit
    os.makedirs(WORK, exist_ok=True)
    resnet = os.path.join(WORK, "resnet50.onnx")
    if not os.path.exists(resnet):
        export_resnet50(resnet)
    models = [("EfficientNet-Lite0", os.path.join(ROOT, "Models", "efficientnet-lite0.onnx")), ("ResNet-50", resnet)]
    models = [m for m in models if m[0] in args.models.split(",")]
    machine_coretype = os.environ.get("OPENBLAS_CORETYPE")
    import onnxruntime
    print(f"# forward benchmark, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, {args.threads} threads, onnxruntime {onnxruntime.__version__}, "
          f"median of {args.runs} after {args.warmup} warm-up runs, {args.rounds} interleaved round(s); "
          f"load average {os.getloadavg()[0]:.2f}")
    builtin_head = " CAMKit ms (own kernels) | ratio |" if args.builtin else ""
    print("| model | batch | ONNX Runtime ms | CAMKit ms (OpenBLAS auto) | ratio | CAMKit ms (OPENBLAS_CORETYPE="
          f"{machine_coretype}) | ratio |{builtin_head} CAMKit GFLOP/s | RSS MB ORT / CAMKit |")
    print("|---|---|---|---|---|---|---|" + ("---|---|" if args.builtin else "") + "---|---|")
    med = statistics.median
    for label, path in models:
        for batch in [int(b) for b in args.batches.split(",")]:
            ort, auto, fixed, own = [], [], [], []
            for _ in range(args.rounds):
                ort.append(run_ort(path, batch, args.runs, args.warmup, args.threads))
                auto.append(run_camkit(path, batch, args.runs, args.warmup, args.threads, None))
                if machine_coretype:
                    fixed.append(run_camkit(path, batch, args.runs, args.warmup, args.threads, machine_coretype))
                if args.builtin:
                    own.append(run_camkit(path, batch, args.runs, args.warmup, args.threads, None, builtin=True))
            ort_ms = med([r["median"] for r in ort])
            auto_ms = med([r["forward_ms"]["median"] for r in auto])
            fixed_ms = med([r["forward_ms"]["median"] for r in fixed]) if fixed else None
            own_ms = med([r["forward_ms"]["median"] for r in own]) if own else None
            gflops = med([r["gflops"] for r in auto])
            fixed_cols = f"{fixed_ms:.2f} | {fixed_ms / ort_ms:.2f}×" if fixed_ms else "– | –"
            own_cols = f" {own_ms:.2f} | {own_ms / ort_ms:.2f}× |" if own_ms else ""
            print(f"| {label} | {batch} | {ort_ms:.2f} | {auto_ms:.2f} | {auto_ms / ort_ms:.2f}× | {fixed_cols} |"
                  f"{own_cols} {gflops:.0f} ({auto[0]['blas']}) | "
                  f"{max(r['rss_mb'] for r in ort):.0f} / {max(r['rss_mb'] for r in auto):.0f} |", flush=True)
    print(f"# load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
