@_exported import Explain

extension ImageClassifier {
    /// A CAM explainer for this classifier.
    ///
    /// ```swift
    /// let classifier = try ImageClassifier.bundled()
    /// let explainer = try classifier.explainer(method: GradCAM())      // default target layer
    /// let explanation = try explainer.explain(input, targets: [.topPrediction])
    /// let map = explanation.map(ofImage: 0)                           // (224, 224) in [0, 1]
    /// ```
    ///
    /// - Parameters:
    ///   - method: the CAM method (default ``Explain/GradCAM``).
    ///   - targetLayers: layer names (module paths, node or tensor names); empty for the default layer.
    ///   - options: see ``Explain/CAMOptions``. When it leaves ``Explain/CAMOptions/inputLayout`` unset
    ///     and the model's sidecar states a layout, the sidecar's is used.
    /// - Throws: ``ONNXGraph/ONNXGraphError/unknownLayer(_:suggestions:)`` for an unknown layer, and the
    ///   errors of ``Explain/CAMExplainer/init(model:method:targetLayers:options:)``.
    public func explainer(method: any CAMMethod = GradCAM(), targetLayers: [String] = [],
                          options: CAMOptions = CAMOptions()) throws -> CAMExplainer {
        var options = options
        if options.inputLayout == nil, let layout = sidecar?.layout?.uppercased() {
            options.inputLayout = layout == "NHWC" ? .nhwc : .nchw
        }
        return try CAMExplainer(model: graph, method: method, targetLayers: targetLayers, options: options)
    }
}
