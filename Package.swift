// swift-tools-version:6.0
import PackageDescription

// Modules follow the data flow, one way:
// PixconvCore → PixconvReaders → PixconvQuant → PixconvStore → PixconvEngine → PixconvRuntime → PixconvImage → pixconv (CLI)
let package = Package(
    name: "pixconv",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "pixconv", targets: ["pixconv"]),
        // The pixconv modules as one library, for the other package in this repository:
        // FuzzTesting/ builds its libFuzzer harnesses against it (`.package(path: "..")`), so its
        // module graph is this manifest's. Not a public API.
        .library(
            name: "PixconvModules",
            targets: ["PixconvCore", "PixconvReaders", "PixconvQuant", "PixconvStore", "PixconvEngine", "PixconvRuntime", "PixconvImage"]
        ),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    ],
    targets: [
        // C libraries, through the system's pkg-config files (Debian: libopenblas-dev, libpng-dev, zlib1g-dev).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // Conversion kernels in C (AVX2/F16C chosen at run time, portable fallback), bit-exact with
        // the Swift references in PixconvQuant; no FP contraction so that results match them.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])]),

        // The compute engine's C kernels: thread pool, linear on stored weight types (int8 VNNI / AVX2,
        // bf16, sgemm), fused attention, elementwise passes; ISA chosen at run time from cpuid.
        .target(name: "CEngine", dependencies: ["CBLAS"], cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])],
                linkerSettings: [.linkedLibrary("dnnl"), .linkedLibrary("gomp")]),

        // SIGBUS from a mapped file truncated by another process → an error naming the file.
        .target(name: "CFileGuard"),

        .target(name: "PixconvCore", dependencies: ["CZlib", "CFileGuard"]),
        .target(name: "PixconvReaders", dependencies: ["PixconvCore", "CZlib"]),
        .target(name: "PixconvQuant", dependencies: ["PixconvCore", "CKernels"]),
        .target(
            name: "PixconvStore",
            dependencies: ["PixconvCore", "PixconvReaders", "PixconvQuant", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The engine: weight types and the linear operation, attention, norms, convolution, the
        // thread pool; below the models, samplers and tokenizer of PixconvRuntime.
        .target(name: "PixconvEngine", dependencies: ["PixconvCore", "PixconvQuant", "CEngine", "CBLAS"]),
        .target(name: "PixconvRuntime", dependencies: ["PixconvCore", "PixconvReaders", "PixconvQuant", "PixconvStore", "PixconvEngine"]),
        .target(name: "PixconvImage", dependencies: ["PixconvCore", "CPNG"]),
        .executableTarget(
            name: "pixconv",
            dependencies: [
                "PixconvCore", "PixconvReaders", "PixconvQuant", "PixconvStore", "PixconvEngine", "PixconvRuntime", "PixconvImage",
                "CLeakSuppressions", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // LeakSanitizer's default suppressions for the pixconv binary (one Foundation leak).
        .target(name: "CLeakSuppressions"),

        // Test-only C hooks for `swift test --sanitize=address` (LeakSanitizer suppressions for XCTest).
        .target(name: "SanitizerSupport", path: "Tests/SanitizerSupport"),
        // Byte builders (zip, GGUF, little-endian integers) and fuzz-file listing shared by the test targets.
        .target(name: "PixconvTestSupport", dependencies: ["PixconvCore"], path: "Tests/PixconvTestSupport"),

        .testTarget(name: "PixconvReadersTests", dependencies: ["PixconvReaders", "SanitizerSupport", "PixconvTestSupport"], exclude: ["Regressions"]),
        .testTarget(name: "PixconvQuantTests", dependencies: ["PixconvQuant", "CKernels"]),
        .testTarget(name: "PixconvStoreTests", dependencies: ["PixconvStore", "PixconvTestSupport"], exclude: ["Regressions"]),
        .testTarget(name: "PixconvEngineTests", dependencies: ["PixconvEngine", "CEngine"]),
        .testTarget(name: "PixconvRuntimeTests", dependencies: ["PixconvRuntime", "PixconvEngine", "PixconvImage", "PixconvTestSupport"], exclude: ["Regressions"]),
        .testTarget(name: "PixconvImageTests", dependencies: ["PixconvImage"]),
        .testTarget(name: "PixconvCLITests", dependencies: ["PixconvCore", "PixconvReaders", "PixconvImage", "PixconvTestSupport"]),
    ]
)
