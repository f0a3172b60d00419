@_exported import Explain

extension ImageClassifier {
    /// A pixel attributor (Captum-style attributions) for this classifier.
    ///
    /// ```swift
    /// let classifier = try ImageClassifier.bundled()
    /// let input = classifier.preprocessing(photo).tensor                     // (1, 3, 224, 224)
    /// let ig = try classifier.attributor(method: IntegratedGradients(steps: 50))
    /// let result = try ig.attribute(input, targets: [.classScore(967)])
    /// print(result.completenessError!)                                       // Σattr − (f(x) − f(0))
    /// let smooth = try classifier.attributor(method: NoiseTunnel(wrapping: Saliency(), samples: 50))
    /// ```
    ///
    /// - Parameters:
    ///   - method: the attribution method (default ``Explain/Saliency``).
    ///   - options: see ``Explain/AttributionOptions``. When it leaves
    ///     ``Explain/AttributionOptions/inputLayout`` unset and the model's sidecar states a layout,
    ///     the sidecar's is used.
    /// - Throws: the errors of ``Explain/Attributor/init(model:method:options:)``.
    public func attributor(method: any AttributionMethod = Saliency(),
                           options: AttributionOptions = AttributionOptions()) throws -> Attributor {
        var options = options
        if options.inputLayout == nil, let layout = sidecar?.layout?.uppercased() {
            options.inputLayout = layout == "NHWC" ? .nhwc : .nchw
        }
        return try Attributor(model: graph, method: method, options: options)
    }
}
