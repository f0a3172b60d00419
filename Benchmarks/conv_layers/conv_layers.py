#!/usr/bin/env python3
"""Per-layer convolution benchmark: CAMKit vs ONNX Runtime vs oneDNN, on the conv shapes of
ResNet-50 and EfficientNet-Lite0 at 224x224.

Usage: python3 Benchmarks/conv_layers/conv_layers.py [--batch 1] [--runs 20] [--threads 2]
           [--camkit .build/release/camkit] [--models resnet50,efficientnet]

Needs: onnx, onnxruntime (pip); libdnnl-dev and a C compiler (for oneDNN); a release build of
camkit. For every distinct conv shape it writes a one-node ONNX model (Conv with bias, the model's
padding folded into the Conv's pads) and times, interleaved per shape:
- ONNX Runtime on that model (intra_op_num_threads = --threads);
- CAMKit on that model (`camkit benchmark --json`; OPENBLAS_CORETYPE unset, like a user's machine),
  twice: with its own kernels (CAMKIT_CONV_BACKEND=builtin: im2col/GEMM through OpenBLAS, direct
  depthwise) and as shipped (PreparedConvolution: oneDNN parts on CAMKit's threads, NCHW <-> blocked
  reorders included);
- oneDNN alone (bench_dnnl.c, OMP_NUM_THREADS = --threads, OMP_WAIT_POLICY=passive because spinning
  OpenMP workers make it 10-100x slower on a loaded machine): NCHW/OIHW layouts as CAMKit stores
  them, and oneDNN's preferred blocked layouts with and without the NCHW <-> blocked reorders.
Prints a table per shape (ms, medians) and totals weighted by how often each shape occurs.
"""
import argparse, collections, json, os, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORK = os.path.join(ROOT, "Benchmarks", "work")


def conv_shapes(path, resnet):
    """Distinct (C, H, W, O, KH, KW, stride, groups, pads) of the model's convs, with counts.
    Pads include a preceding zero Pad node (EfficientNet-Lite's TF-style padding)."""
    import numpy as np, onnx, onnxruntime as ort
    m = onnx.load(path)
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    producers = {o: n for n in m.graph.node for o in n.output}
    # Run once with every conv input (and every Pad input) as an output to learn the shapes.
    wanted = []
    for n in convs:
        wanted.append(n.input[0])
        p = producers.get(n.input[0])
        if p is not None and p.op_type == "Pad":
            wanted.append(p.input[0])
    del m.graph.output[:]
    for name in dict.fromkeys(wanted):
        m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.rand(1, 3, 224, 224).astype(np.float32)
    values = dict(zip(dict.fromkeys(wanted), s.run(None, {s.get_inputs()[0].name: x})))
    inits = {t.name: list(t.dims) for t in m.graph.initializer}
    counts = collections.Counter()
    for n in convs:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
        w = inits[n.input[1]]
        pads = list(a.get("pads", [0, 0, 0, 0]))
        shape = values[n.input[0]].shape
        p = producers.get(n.input[0])
        if p is not None and p.op_type == "Pad":
            before = values[p.input[0]].shape
            extra_h, extra_w = shape[2] - before[2], shape[3] - before[3]
            stride = a.get("strides", [1, 1])[0]
            # TF "SAME": the odd element goes to the end.
            pads = [pads[0] + extra_h // 2, pads[1] + extra_w // 2,
                    pads[2] + extra_h - extra_h // 2, pads[3] + extra_w - extra_w // 2]
            shape = before
        key = (shape[1], shape[2], shape[3], w[0], w[2], w[3], a.get("strides", [1, 1])[0], a.get("group", 1),
               *pads)
        counts[key] += 1
    return counts


def label(prefix, k):
    c, h, w, o, kh, kw, s, g = k[:8]
    kind = "dw" if g == c and g > 1 else f"{kh}x{kw}"
    return f"{prefix}_{kind}_{c}-{o}_s{s}@{h}"


def single_conv_model(k, batch, path):
    import numpy as np, onnx
    from onnx import helper, TensorProto, numpy_helper
    c, h, w, o, kh, kw, s, g, pt, pl, pb, pr = k
    rng = np.random.default_rng(0)
    W = numpy_helper.from_array((rng.standard_normal((o, c // g, kh, kw)) * 0.1).astype(np.float32), "W")
    B = numpy_helper.from_array(rng.standard_normal(o).astype(np.float32), "B")
    node = helper.make_node("Conv", ["x", "W", "B"], ["y"], kernel_shape=[kh, kw], strides=[s, s],
                            pads=[pt, pl, pb, pr], group=g)
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, h, w])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [W, B])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def time_ort(path, k, batch, runs, threads):
    import numpy as np, onnxruntime as ort
    o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    x = np.random.rand(batch, k[0], k[1], k[2]).astype(np.float32)
    for _ in range(3): s.run(None, {"x": x})
    ts = []
    for _ in range(runs):
        t = time.perf_counter(); s.run(None, {"x": x}); ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def time_camkit(exe, path, batch, runs, threads, builtin):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env["CAMKIT_CONV_BACKEND"] = "builtin" if builtin else "automatic"
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    env["OMP_NUM_THREADS"] = str(threads)
    out = subprocess.run([exe, "benchmark", "--model", path, "--batch", str(batch), "--runs", str(runs),
                          "--warmup", "3", "--threads", str(threads), "--json"],
                         check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])["forward_ms"]["median"]


def time_dnnl(exe, k, batch, runs, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="passive")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(" ".join(str(v) for v in k) + " 1 x\n")
        name = f.name
    try:
        out = subprocess.run([exe, name, str(batch), str(runs)], check=True, capture_output=True, text=True,
                             env=env).stdout
    finally:
        os.unlink(name)
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--camkit", default=os.path.join(ROOT, ".build", "release", "camkit"))
    ap.add_argument("--models", default="resnet50,efficientnet")
    ap.add_argument("--no-camkit", action="store_true")
    args = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    dnnl_exe = os.path.join(WORK, "bench_dnnl")
    subprocess.run(["cc", "-O2", "-o", dnnl_exe, os.path.join(HERE, "bench_dnnl.c"), "-ldnnl"], check=True)
    models = []
    if "resnet50" in args.models:
        resnet = os.path.join(WORK, "resnet50.onnx")
        if not os.path.exists(resnet):
            sys.path.insert(0, os.path.join(ROOT, "Benchmarks"))
            from forward import export_resnet50
            export_resnet50(resnet)
        models.append(("R50", resnet))
    if "efficientnet" in args.models:
        models.append(("Eff", os.path.join(ROOT, "Models", "efficientnet-lite0.onnx")))
    print(f"# conv layers, batch {args.batch}, {args.threads} threads, median of {args.runs}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print("| layer | count | ORT ms | CAMKit own kernels ms | CAMKit + oneDNN ms | oneDNN alone NCHW ms | "
          "oneDNN alone blocked ms (conv only / with reorders) | oneDNN impl (NCHW / blocked) |")
    print("|---|---|---|---|---|---|---|---|")
    for prefix, path in models:
        totals = collections.Counter()
        for k, count in conv_shapes(path, prefix == "R50").items():
            model_path = os.path.join(WORK, "conv_layer.onnx")
            single_conv_model(k, args.batch, model_path)
            ort_ms = time_ort(model_path, k, args.batch, args.runs, args.threads)
            own_ms = 0.0 if args.no_camkit else time_camkit(args.camkit, model_path, args.batch, args.runs,
                                                            args.threads, True)
            cam_ms = 0.0 if args.no_camkit else time_camkit(args.camkit, model_path, args.batch, args.runs,
                                                            args.threads, False)
            d = time_dnnl(dnnl_exe, k, args.batch, args.runs, args.threads)
            totals["ort"] += count * ort_ms
            totals["camkit"] += count * cam_ms
            totals["own"] += count * own_ms
            totals["nchw"] += count * d["nchw_ms"]
            totals["blocked"] += count * d["blocked_conv_ms"]
            totals["blocked_reorders"] += count * d["blocked_with_reorders_ms"]
            print(f"| {label(prefix, k)} | {count} | {ort_ms:.3f} | {own_ms:.3f} | {cam_ms:.3f} | {d['nchw_ms']:.3f} | "
                  f"{d['blocked_conv_ms']:.3f} / {d['blocked_with_reorders_ms']:.3f} | "
                  f"{d['nchw_impl']} / {d['blocked_impl']} |", flush=True)
        print(f"| **{prefix} total** | | {totals['ort']:.2f} | {totals['own']:.2f} | {totals['camkit']:.2f} | "
              f"{totals['nchw']:.2f} | "
              f"{totals['blocked']:.2f} / {totals['blocked_reorders']:.2f} | |", flush=True)
    print(f"# load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
