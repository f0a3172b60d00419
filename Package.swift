// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "CAMKit",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "CAMKit", targets: ["CAMKit"]),
        .executable(name: "camkit", targets: ["camkit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // System BLAS: OpenBLAS on Linux (Accelerate is used directly on Apple platforms).
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Hand-tuned C kernels, compiled for several ISAs and chosen at run time.
        .target(name: "CKernels"),
        // libpng / libjpeg-turbo with error handlers that return instead of exiting.
        .target(
            name: "CCodecs",
            linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg")]
        ),
        // oneDNN (Debian: libdnnl-dev, no pkg-config file) for prepared convolutions on Linux:
        // a small C glue over its C API.
        .target(name: "CDNNL", linkerSettings: [.linkedLibrary("dnnl"), .linkedLibrary("gomp")]),
        .target(name: "TensorCore", dependencies: [
            "CBLAS", "CKernels", .target(name: "CDNNL", condition: .when(platforms: [.linux])),
        ]),
        .target(
            name: "ONNXGraph",
            dependencies: ["TensorCore", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .target(name: "Explain", dependencies: ["TensorCore", "ONNXGraph"]),
        // FreeType (Debian: libfreetype-dev) for caption text.
        .systemLibrary(name: "CFreeType", pkgConfig: "freetype2", providers: [.apt(["libfreetype-dev"])]),
        .target(name: "Imaging", dependencies: ["TensorCore", "CCodecs", "CFreeType"]),
        .target(name: "CAMKit", dependencies: ["TensorCore", "ONNXGraph", "Explain", "Imaging"]),
        .executableTarget(
            name: "camkit",
            dependencies: ["CAMKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"]),
        .testTarget(name: "ONNXGraphTests", dependencies: ["ONNXGraph", "TensorCore"], exclude: ["Fixtures"]),
        .testTarget(name: "CAMKitTests", dependencies: ["CAMKit"]),
        .testTarget(name: "camkitTests", dependencies: ["camkit"], exclude: ["Fixtures"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "TensorCore"], exclude: ["Fixtures"]),
        .testTarget(name: "ExplainTests", dependencies: ["Explain", "ONNXGraph", "TensorCore"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
