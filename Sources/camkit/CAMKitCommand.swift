import ArgumentParser

/// The `camkit` command: explain what an image classifier looks at.
///
/// Its `main` (every error one line on stderr with a sysexits status) is in Support/EntryPoint.swift.
@main
struct CAMKitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "camkit",
        abstract: "Explain what an image classifier looks at: class-activation maps for ONNX models.",
        version: "0.1.0",
        subcommands: [ExplainCommand.self, Predict.self, Layers.self, Compare.self, Features.self, Kernels.self, Deconv.self, Attribute.self, Benchmark.self],
        defaultSubcommand: ExplainCommand.self
    )
}
