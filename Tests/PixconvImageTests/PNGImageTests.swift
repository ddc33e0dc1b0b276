import Foundation
import PixconvCore
import XCTest

@testable import PixconvImage

/// PNG writing/reading through libpng's simplified API, text chunks, PIL-written files
/// (fixtures/image/ from scripts/make_metric_reference.py) and hostile bytes.
final class PNGImageTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "/pixconv-png-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func pngTestPixels(width: Int, height: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<width * height * 3).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
    }

    func testRoundTripWithTextChunks() throws {
        let rgb = pngTestPixels(width: 7, height: 5, seed: 1)
        let text = [("prompt", "a cat, sitting"), ("title", "naïve café ☃ 日本"), ("Model Name", "x\ny")]
        let path = folder + "/round.png"
        try PNGImage.write(path: path, rgb: rgb, width: 7, height: 5, textChunks: text)
        let back = try PNGImage.read(path: path)
        XCTAssertEqual(back.width, 7)
        XCTAssertEqual(back.height, 5)
        XCTAssertEqual(back.rgb, rgb)
        let readText = try PNGImage.readText(path: path)
        XCTAssertEqual(readText.map { $0.key }, text.map { $0.0 })
        XCTAssertEqual(readText.map { $0.value }, text.map { $0.1 })
        // ASCII values go in tEXt, others in iTXt; all before IEND, IEND last.
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let types = try PNGChunks.parse(bytes, file: path).map(\.type)
        XCTAssertEqual(Array(types.suffix(4)), ["tEXt", "iTXt", "tEXt", "IEND"])
        XCTAssertEqual(types.first, "IHDR")
    }

    func testReadsPILWrittenFiles() throws {
        let dir = vaeImageFixture("")
        let expected = try pngExpected()
        let a = try PNGImage.read(path: dir + "a.png")
        XCTAssertEqual(a.width, expected.width)
        XCTAssertEqual(a.height, expected.height)
        XCTAssertEqual(a.rgb, Array(try Data(contentsOf: URL(fileURLWithPath: dir + "a.rgb"))))
        let text = try PNGImage.readText(path: dir + "a.png")
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: text.map { ($0.key, $0.value) }), expected.text)
        // Grayscale is expanded to RGB; an opaque alpha channel is dropped.
        XCTAssertEqual(try PNGImage.read(path: dir + "gray.png").rgb,
                       Array(try Data(contentsOf: URL(fileURLWithPath: dir + "gray.rgb"))))
        XCTAssertEqual(try PNGImage.read(path: dir + "rgba.png").rgb, a.rgb)
        // 16-bit samples k·257 come back as k (sRGB-encoded, scaled; not treated as linear light).
        XCTAssertEqual(try PNGImage.read(path: dir + "gray16.png").rgb,
                       Array(try Data(contentsOf: URL(fileURLWithPath: dir + "gray.rgb"))))
    }

    func testTruncatedFilesThrow() throws {
        let png = try PNGImage.encode(rgb: pngTestPixels(width: 6, height: 4, seed: 2), width: 6, height: 4,
                                      textChunks: [("k", "v")])
        for length in 0..<png.count {
            XCTAssertThrowsError(try PNGImage.decode(Array(png[..<length]), file: "cut.png"), "length \(length)") {
                XCTAssertTrue("\($0)".hasPrefix("cut.png: "), "\($0)")
            }
        }
        XCTAssertNoThrow(try PNGImage.decode(png))
    }

    func testBadCRCAndCorruptDataThrow() throws {
        let png = try PNGImage.encode(rgb: pngTestPixels(width: 9, height: 9, seed: 3), width: 9, height: 9)
        let chunks = try PNGChunks.parse(png, file: "x")
        let idat = try XCTUnwrap(chunks.first { $0.type == "IDAT" })
        // Flip one data byte: the stored CRC no longer matches.
        var flipped = png
        flipped[idat.data.lowerBound + 3] ^= 0x5A
        XCTAssertThrowsError(try PNGImage.decode(flipped, file: "crc.png")) { error in
            guard case ImageError.badCRC(let file, let chunk, let offset, _, _) = error else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(file, "crc.png")
            XCTAssertEqual(chunk, "IDAT")
            XCTAssertEqual(offset, idat.offset)
        }
        // Same corruption with a recomputed CRC: libpng's inflate fails, reported as an error.
        var recrc = flipped
        let crc = recrc.withUnsafeBytes { crc32(UnsafeRawBufferPointer(rebasing: $0[idat.offset + 4..<idat.data.upperBound])) }
        recrc.replaceSubrange(idat.data.upperBound..<idat.data.upperBound + 4, with: pngBigEndian(crc))
        XCTAssertThrowsError(try PNGImage.decode(recrc, file: "zlib.png")) { error in
            print("corrupt idat:", error)
            XCTAssertTrue("\(error)".hasPrefix("zlib.png: "), "\(error)")
        }
        // A chunk length beyond the end of the file, a bad chunk type, IHDR not first, not a PNG at all.
        var long = png
        long[8] = 0x7F
        XCTAssertThrowsError(try PNGImage.decode(long, file: "long.png"))
        var badType = png
        badType[12] = 0x31
        XCTAssertThrowsError(try PNGImage.decode(badType))
        let noIHDR = Array(png[..<8]) + PNGChunks.chunk(type: "tEXt", data: Array("a\0b".utf8)) + Array(png[8...])
        XCTAssertThrowsError(try PNGImage.decode(noIHDR))
        XCTAssertThrowsError(try PNGImage.decode(Array("GIF89a not a png at all".utf8))) {
            XCTAssertEqual($0 as? ImageError, .notPNG(file: "<memory>"))
        }
    }

    /// IHDR claiming a huge image (with a valid CRC) is refused before any pixel memory is allocated.
    func testHugeDimensionsAreRefused() throws {
        let png = try PNGImage.encode(rgb: pngTestPixels(width: 3, height: 3, seed: 5), width: 3, height: 3)
        for (width, height) in [(60_000, 60_000), (0x7FFF_FFFF, 1), (0, 3)] as [(UInt32, UInt32)] {
            var bytes = png
            bytes.replaceSubrange(16..<24, with: pngBigEndian(width) + pngBigEndian(height))
            let crc = bytes.withUnsafeBytes { crc32(UnsafeRawBufferPointer(rebasing: $0[12..<29])) }
            bytes.replaceSubrange(29..<33, with: pngBigEndian(crc))
            XCTAssertThrowsError(try PNGImage.decode(bytes, file: "huge.png"), "\(width)×\(height)") { error in
                XCTAssertTrue("\(error)".hasPrefix("huge.png: "), "\(error)")
            }
        }
    }

    func testReadErrorsNameTheFile() throws {
        let path = folder + "/bad.png"
        try Data([137, 80, 78, 71, 13, 10, 26, 10, 0, 0]).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try PNGImage.read(path: path)) { XCTAssertTrue("\($0)".contains(path), "\($0)") }
        XCTAssertThrowsError(try PNGImage.read(path: folder + "/missing.png")) {
            XCTAssertTrue("\($0)".contains("missing.png"), "\($0)")
        }
    }

    func testBadWriteArgumentsThrow() throws {
        let rgb = pngTestPixels(width: 2, height: 2, seed: 4)
        XCTAssertThrowsError(try PNGImage.encode(rgb: rgb, width: 3, height: 2))
        XCTAssertThrowsError(try PNGImage.encode(rgb: [], width: 0, height: 0))
        XCTAssertThrowsError(try PNGImage.encode(rgb: rgb, width: Int.max, height: 2))
        for key in ["", " lead", "trail ", "two  spaces", String(repeating: "k", count: 80), "é"] {
            XCTAssertThrowsError(try PNGImage.encode(rgb: rgb, width: 2, height: 2, textChunks: [(key, "v")]), key)
        }
        XCTAssertThrowsError(try PNGImage.encode(rgb: rgb, width: 2, height: 2, textChunks: [("k", "a\0b")]))
        XCTAssertThrowsError(try PNGImage.write(path: folder + "/no/such/dir/x.png", rgb: rgb, width: 2, height: 2))
        // Nothing is left behind by a failed write; an existing file is kept when replace is false.
        let path = folder + "/keep.png"
        try PNGImage.write(path: path, rgb: rgb, width: 2, height: 2)
        XCTAssertThrowsError(try PNGImage.write(path: path, rgb: rgb, width: 2, height: 2, replace: false))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["keep.png"])
    }
}

private func pngBigEndian(_ v: UInt32) -> [UInt8] {
    let b0 = UInt8(v >> 24), b1 = UInt8((v >> 16) & 255), b2 = UInt8((v >> 8) & 255), b3 = UInt8(v & 255)
    return [b0, b1, b2, b3]
}

func vaeImageFixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures/image").path + "/" + name
}

struct PNGExpectedValues: Decodable {
    let width: Int
    let height: Int
    let psnr_uint8: Double
    let psnr_float: Double
    let ssim: Double
    let ssim_channels: [Double]
    let max_abs_diff: Int
    let text: [String: String]
}

func pngExpected() throws -> PNGExpectedValues {
    try JSONDecoder().decode(PNGExpectedValues.self,
                             from: Data(contentsOf: URL(fileURLWithPath: vaeImageFixture("expected.json"))))
}
