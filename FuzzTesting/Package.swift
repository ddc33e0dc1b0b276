// swift-tools-version:6.0
import PackageDescription

// libFuzzer harnesses for pixconv's readers (formats/fuzzing.md; build and run with scripts/fuzz).
//
// A separate package so that `swift build`/`swift test` of pixconv never link libFuzzer. The
// pixconv modules come from the root package itself (its `PixconvModules` library product), so
// this manifest restates none of their targets, dependencies or settings: a target added to or
// changed in ../Package.swift reaches the harnesses as it is.
let package = Package(
    name: "PixconvFuzz",
    dependencies: [
        .package(name: "pixconv", path: ".."),
    ],
    targets: [
        // `LLVMFuzzerRunDriver` (libclang_rt.fuzzer, LLVM ≥ 13) declared for Swift.
        .target(name: "CFuzzShim"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzShim", .product(name: "PixconvModules", package: "pixconv")]),

        .executableTarget(name: "FuzzSafetensors", dependencies: ["FuzzSupport", .product(name: "PixconvModules", package: "pixconv")]),
        .executableTarget(name: "FuzzPickle", dependencies: ["FuzzSupport", .product(name: "PixconvModules", package: "pixconv")]),
        .executableTarget(name: "FuzzZip", dependencies: ["FuzzSupport", .product(name: "PixconvModules", package: "pixconv")]),
        .executableTarget(name: "FuzzTorch", dependencies: ["FuzzSupport", .product(name: "PixconvModules", package: "pixconv")]),
        .executableTarget(name: "FuzzGGUF", dependencies: ["FuzzSupport", .product(name: "PixconvModules", package: "pixconv")]),
        .executableTarget(name: "FuzzSpiece", dependencies: ["FuzzSupport", .product(name: "PixconvModules", package: "pixconv")]),
        .executableTarget(name: "FuzzConfig", dependencies: ["FuzzSupport", .product(name: "PixconvModules", package: "pixconv")]),
    ]
)
