import Foundation
import ONNXGraph
import TensorCore

/// Integrated Gradients: `(x − x') ⊙ ∫₀¹ ∂F(x' + α(x − x'))/∂x dα`, the integral approximated by a
/// quadrature rule over `steps` points, with the completeness error reported.
///
/// Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks", eq. (1) and the
/// Riemann approximation of §5 (eq. 3). Matches Captum `captum/attr/_core/integrated_gradients.py`
/// with `captum/attr/_utils/approximation_methods.py` (``IntegrationRule``): the interpolated
/// inputs are `x' + α·(x − x')` in Float32 with `α` rounded to Float32, each gradient is weighted
/// by the rule's step size (Float32) and summed, and the sum is multiplied by `x − x'`.
///
/// The `steps × images` interpolated inputs go through the network in internal batches of
/// ``AttributionOptions/batchSize`` rows (Captum's `internal_batch_size`); the result does not
/// depend on the batch size beyond Float32 rounding. Completeness (the paper's axiom, Captum's
/// `compute_convergence_delta`): per image `Σ attributions − (F(x) − F(x'))`, reported in
/// ``AttributionResult/completenessError``; it shrinks as `steps` grows.
public struct IntegratedGradients: AttributionMethod {
    public var name: String { "IntegratedGradients" }
    /// The number of quadrature points (Captum's `n_steps`, default 50).
    public var steps: Int
    /// The quadrature rule (Captum's `method`, default Gauss–Legendre).
    public var rule: IntegrationRule
    /// The reference input (default zeros, as Captum).
    public var baseline: AttributionBaseline

    /// Creates the method.
    /// - Parameters:
    ///   - steps: quadrature points (default 50); at least 2 for the Riemann rules, 1 for Gauss–Legendre.
    ///   - rule: default ``IntegrationRule/gaussLegendre`` (Captum's default).
    ///   - baseline: default ``AttributionBaseline/zeros``.
    public init(steps: Int = 50, rule: IntegrationRule = .gaussLegendre, baseline: AttributionBaseline = .zeros) {
        self.steps = steps
        self.rule = rule
        self.baseline = baseline
    }

    public func attributions(of images: Tensor, context: AttributionContext) throws -> MethodAttributions {
        let (stepSizes, alphas) = try rule.coefficients(steps: steps)
        let baselines = try baseline.materialized(for: images, origins: context.origins, batch: context.inputBatch,
                                                  layout: context.inputLayout)
        let count = images.shape[0]
        let sampleShape = Array(images.shape.dropFirst())
        let n = sampleShape.reduce(1, *)
        let steps = self.steps
        // Σ_s stepSize_s · ∂F/∂x at each interpolation point, per image.
        var total = Tensor(zeros: images.shape)
        var difference = Tensor(uninitializedShape: images.shape)
        try images.withUnsafeBufferPointer { x in
            try baselines.withUnsafeBufferPointer { b in
                try difference.withUnsafeMutableBufferPointer { d in
                    for i in 0..<d.count { d[i] = x[i] - b[i] }
                    let diff = UnsafeBufferPointer(d)
                    try total.withUnsafeMutableBufferPointer { acc in
                        try context.inputGradients(
                            rowCount: count * steps, sampleShape: sampleShape, imageOfRow: { $0 / steps },
                            fill: { row, sample in
                                let (j, s) = (row / steps, row % steps)
                                let alpha = alphas[s]
                                for i in 0..<n { sample[i] = b[j * n + i] + alpha * diff[j * n + i] }
                            },
                            consume: { row, g, _ in
                                let (j, s) = (row / steps, row % steps)
                                let w = stepSizes[s]
                                for i in 0..<n { acc[j * n + i] += g[i] * w }
                            })
                    }
                }
            }
        }
        var attributions = total
        attributions.withUnsafeMutableBufferPointer { a in
            difference.withUnsafeBufferPointer { d in
                for i in 0..<a.count { a[i] *= d[i] }
            }
        }
        // Completeness: F(x) and F(x') for every image, one forward pass each.
        let scores = try images.withUnsafeBufferPointer { x in
            try baselines.withUnsafeBufferPointer { b in
                try context.scores(rowCount: 2 * count, sampleShape: sampleShape, imageOfRow: { $0 % count }) { row, sample in
                    let src = row < count ? x : b
                    let j = row % count
                    for i in 0..<n { sample[i] = src[j * n + i] }
                }
            }
        }
        var errors: [Float] = []
        var differences: [Float] = []
        attributions.withUnsafeBufferPointer { a in
            for j in 0..<count {
                var sum = 0.0
                for i in (j * n)..<((j + 1) * n) { sum += Double(a[i]) }
                let diff = Double(scores[j]) - Double(scores[count + j])
                errors.append(Float(sum - diff))
                differences.append(Float(diff))
            }
        }
        return MethodAttributions(attributions: attributions, completenessError: errors, scoreDifference: differences)
    }
}

/// A quadrature rule for the path integral of ``IntegratedGradients``, exactly as Captum's
/// `approximation_methods.py`.
///
/// For `n` steps: the Riemann rules use step sizes `1/n` (trapezoid: the first and last halved)
/// and points from PyTorch's Float32 `linspace` — left `linspace(0, 1 − 1/n, n)`, right
/// `linspace(1/n, 1, n)`, middle `linspace(1/(2n), 1 − 1/(2n), n)`, trapezoid `linspace(0, 1, n)`;
/// Gauss–Legendre uses NumPy's `leggauss(n)` nodes and weights mapped from [−1, 1] to [0, 1]
/// (`α = (1 + t)/2`, step `w/2`).
public enum IntegrationRule: String, Sendable, CaseIterable {
    /// Left Riemann sum (`riemann_left`).
    case riemannLeft = "riemann_left"
    /// Right Riemann sum (`riemann_right`).
    case riemannRight = "riemann_right"
    /// Midpoint rule (`riemann_middle`).
    case riemannMiddle = "riemann_middle"
    /// Trapezoidal rule (`riemann_trapezoid`).
    case riemannTrapezoid = "riemann_trapezoid"
    /// Gauss–Legendre quadrature (`gausslegendre`, Captum's default).
    case gaussLegendre = "gausslegendre"

    /// Step sizes (weights) and points `α` in [0, 1], both rounded to Float32 as Captum uses them.
    /// - Throws: ``ExplainError/invalidOption(name:value:reason:)`` for too few steps.
    public func coefficients(steps n: Int) throws -> (stepSizes: [Float], alphas: [Float]) {
        let minimum = self == .gaussLegendre ? 1 : 2
        guard n >= minimum else {
            throw ExplainError.invalidOption(name: "steps", value: "\(n)",
                                             reason: "\(rawValue) needs at least \(minimum) steps (Captum's default is 50)")
        }
        if self == .gaussLegendre {
            let (nodes, weights) = gaussLegendreNodes(n)
            return (weights.map { Float(0.5 * $0) }, nodes.map { Float(0.5 * (1 + $0)) })
        }
        var sizes = [Double](repeating: 1 / Double(n), count: n)
        if self == .riemannTrapezoid {
            sizes[0] /= 2
            sizes[n - 1] /= 2
        }
        let alphas: [Float]
        switch self {
        case .riemannTrapezoid: alphas = torchLinspace(0, 1, n)
        case .riemannLeft: alphas = torchLinspace(0, Float(1 - 1 / Double(n)), n)
        case .riemannMiddle: alphas = torchLinspace(Float(1 / (2 * Double(n))), Float(1 - 1 / (2 * Double(n))), n)
        case .riemannRight: alphas = torchLinspace(Float(1 / Double(n)), 1, n)
        case .gaussLegendre: preconditionFailure("handled above")
        }
        return (sizes.map { Float($0) }, alphas)
    }
}

/// PyTorch's CPU `torch.linspace(start, end, n)` in Float32 (`RangeFactoriesKernel.cpp`):
/// `start + step·i` for the first half, `end − step·(n − 1 − i)` for the second, with
/// `step = (end − start)/(n − 1)` in Float32 and each multiply-add fused (the compiler contracts
/// them into FMAs; checked bit for bit against `torch.linspace` for the four Riemann rules at 50 steps).
func torchLinspace(_ start: Float, _ end: Float, _ n: Int) -> [Float] {
    if n == 1 { return [start] }
    let step = (end - start) / Float(n - 1)
    let halfway = n / 2
    return (0..<n).map { i in
        i < halfway ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(n - 1 - i))
    }
}

/// Gauss–Legendre nodes (ascending, in [−1, 1]) and weights for `n` points, by Newton's method on
/// the Legendre polynomial (Double; agrees with NumPy's `leggauss` to ~1e−15).
func gaussLegendreNodes(_ n: Int) -> (nodes: [Double], weights: [Double]) {
    var nodes = [Double](repeating: 0, count: n)
    var weights = [Double](repeating: 0, count: n)
    for i in 0..<((n + 1) / 2) {
        // Initial guess (Tricomi), then Newton on P_n.
        var z = cos(Double.pi * (Double(i) + 0.75) / (Double(n) + 0.5))
        var derivative = 0.0
        for _ in 0..<100 {
            var p0 = 1.0, p1 = 0.0
            for k in 1...n {
                let p2 = p1
                p1 = p0
                p0 = ((2 * Double(k) - 1) * z * p1 - (Double(k) - 1) * p2) / Double(k)
            }
            derivative = Double(n) * (z * p0 - p1) / (z * z - 1)
            let dz = p0 / derivative
            z -= dz
            if abs(dz) < 1e-16 { break }
        }
        // Recompute the derivative at the converged root for the weight.
        var p0 = 1.0, p1 = 0.0
        for k in 1...n {
            let p2 = p1
            p1 = p0
            p0 = ((2 * Double(k) - 1) * z * p1 - (Double(k) - 1) * p2) / Double(k)
        }
        derivative = Double(n) * (z * p0 - p1) / (z * z - 1)
        let w = 2 / ((1 - z * z) * derivative * derivative)
        nodes[i] = -z
        nodes[n - 1 - i] = z
        weights[i] = w
        weights[n - 1 - i] = w
    }
    if n % 2 == 1 { nodes[n / 2] = 0 }
    return (nodes, weights)
}
