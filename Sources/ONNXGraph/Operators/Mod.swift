import TensorCore

// Mod — https://onnx.ai/onnx/operators/onnx__Mod.html
// Opsets 10, 13 (CAMKit: 11–21): remainder with multidirectional broadcasting. Attribute `fmod`
// (default 0): 0 gives the integer remainder with the divisor's sign (Python `%`), 1 gives C
// `fmod` (the dividend's sign), which floating-point inputs require.
// Types: float32 (fmod = 1 only), int64.

/// ONNX `Mod`.
struct ModOperator: DifferentiableOperator {
    /// Whether the remainder takes the dividend's sign (C `fmod`).
    let fmod: Bool

    init(node: Node, opset: Int) throws {
        let f = try node.int("fmod", default: 0)
        guard f == 0 || f == 1 else { throw OperatorError("attribute 'fmod' must be 0 or 1, got \(f)") }
        fmod = f == 1
    }

    func inferOutputs(_ inputs: [ValueInfo?]) throws -> [ValueInfo] {
        let out = try inferBroadcastBinary(inputs, allowed: [.float32, .int64])
        if out[0].dtype == .float32 && !fmod {
            throw OperatorError("Mod of floating-point inputs requires fmod = 1 (the ONNX spec forbids fmod = 0 for floats)")
        }
        return out
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try required(inputs, 0, "A"), b = try required(inputs, 1, "B")
        if a.dtype == .float32 && !fmod {
            throw OperatorError("Mod of floating-point inputs requires fmod = 1")
        }
        return [mod(a, b, fmod: fmod)]
    }

    func pullback(inputs: [Tensor?], outputs: [Tensor], outputGradients: [Tensor?], needed: [Bool],
                  context: PullbackContext) throws -> [Tensor?] {
        guard let g = outputGradient(outputGradients), let a = elementwiseInput(inputs, 0), let b = elementwiseInput(inputs, 1),
              a.dtype == .float32 else { return [nil, nil] }
        let r = modPullback(g, a, b, computingA: wantsGradient(needed, inputs, 0),
                            computingB: wantsGradient(needed, inputs, 1))
        return [r.a, r.b]
    }
}
