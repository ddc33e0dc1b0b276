// swift-tools-version:6.0
import PackageDescription

// libFuzzer harnesses for pixconv's readers (formats/fuzzing.md; build and run with scripts/fuzz).
//
// A separate package so that `swift build`/`swift test` of pixconv never link libFuzzer. The root
// package exports no library products, so the pixconv modules are compiled here again from
// symlinks to ../Sources (SwiftPM refuses target paths outside the package root but follows
// symlinks). PixconvStore is built without Converter.swift, the only file that needs swift-crypto,
// so this package has no remote dependencies.
let package = Package(
    name: "PixconvFuzz",
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib"),
        .target(name: "CFileGuard", path: "Sources/CFileGuard"),
        .target(name: "PixconvCore", dependencies: ["CZlib", "CFileGuard"], path: "Sources/PixconvCore"),
        .target(name: "PixconvReaders", dependencies: ["PixconvCore", "CZlib"], path: "Sources/PixconvReaders"),
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])]),
        .target(name: "PixconvQuant", dependencies: ["PixconvCore", "CKernels"], path: "Sources/PixconvQuant"),
        .target(
            name: "PixconvStore", dependencies: ["PixconvCore", "PixconvReaders", "PixconvQuant"],
            path: "Sources/PixconvStore", exclude: ["Converter.swift"]
        ),
        .target(name: "CEngine", dependencies: ["CBLAS"], path: "Sources/CEngine",
                cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])]),
        .target(name: "PixconvEngine", dependencies: ["PixconvCore", "PixconvQuant", "CEngine", "CBLAS"],
                path: "Sources/PixconvEngine"),
        .target(
            name: "PixconvRuntime", dependencies: ["PixconvCore", "PixconvReaders", "PixconvQuant", "PixconvStore", "PixconvEngine"],
            path: "Sources/PixconvRuntime"
        ),

        // `LLVMFuzzerRunDriver` (libclang_rt.fuzzer, LLVM ≥ 13) declared for Swift.
        .target(name: "CFuzzShim"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzShim", "PixconvCore"]),

        .executableTarget(name: "FuzzSafetensors", dependencies: ["FuzzSupport", "PixconvReaders"]),
        .executableTarget(name: "FuzzPickle", dependencies: ["FuzzSupport", "PixconvReaders"]),
        .executableTarget(name: "FuzzZip", dependencies: ["FuzzSupport", "PixconvReaders"]),
        .executableTarget(name: "FuzzTorch", dependencies: ["FuzzSupport", "PixconvReaders"]),
        .executableTarget(name: "FuzzGGUF", dependencies: ["FuzzSupport", "PixconvStore"]),
        .executableTarget(name: "FuzzSpiece", dependencies: ["FuzzSupport", "PixconvRuntime"]),
        .executableTarget(name: "FuzzConfig", dependencies: ["FuzzSupport", "PixconvRuntime"]),
    ]
)
