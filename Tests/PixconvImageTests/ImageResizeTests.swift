import Foundation
import XCTest

@testable import PixconvImage

/// Pillow's Lanczos resize and `Image.open(f).convert("RGB")` (what diffusers' `load_image` and
/// `VaeImageProcessor.resize` do to an init image) against Pillow itself: fixtures/img2img/resize.safetensors
/// and decode/ from scripts/make_img2img_reference.py.
final class ImageResizeTests: XCTestCase {
    private static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures/img2img").path

    /// The uint8 tensors of a small safetensors file: name → (shape, bytes). (This test target has no
    /// safetensors reader; the format is 8-byte header length, JSON header, data.)
    private func u8Tensors(_ name: String) throws -> [String: (shape: [Int], bytes: [UInt8])] {
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.folder + "/" + name)))
        let n = data[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(data[8..<8 + n])) as? [String: Any])
        var out: [String: (shape: [Int], bytes: [UInt8])] = [:]
        for (key, value) in header where key != "__metadata__" {
            let entry = try XCTUnwrap(value as? [String: Any])
            XCTAssertEqual(entry["dtype"] as? String, "U8", key)
            let offsets = try XCTUnwrap(entry["data_offsets"] as? [Int])
            out[key] = (try XCTUnwrap(entry["shape"] as? [Int]), Array(data[8 + n + offsets[0]..<8 + n + offsets[1]]))
        }
        return out
    }

    func testLanczosMatchesPillowBitForBit() throws {
        let t = try u8Tensors("resize.safetensors")
        var checked = 0
        for (key, src) in t where key.hasPrefix("src_") {
            let tag = String(key.dropFirst(4))
            let dst = try XCTUnwrap(t["dst_" + tag])
            let out = ImageResize.lanczos(rgb: src.bytes, width: src.shape[1], height: src.shape[0],
                                          toWidth: dst.shape[1], toHeight: dst.shape[0])
            let worst = zip(out, dst.bytes).map { abs(Int($0) - Int($1)) }.max() ?? 0
            XCTAssertEqual(out, dst.bytes, "\(tag): \(src.shape) → \(dst.shape), worst difference \(worst)")
            checked += 1
        }
        XCTAssertEqual(checked, 5)
        let same = [UInt8](repeating: 9, count: 12)
        XCTAssertEqual(ImageResize.lanczos(rgb: same, width: 2, height: 2, toWidth: 2, toHeight: 2), same)
    }

    /// RGB, RGBA and grey+alpha (alpha dropped, colours kept), grey, palette with a transparent
    /// entry and 16-bit RGB decode to Pillow's `convert("RGB")` pixels.
    func testDecodeDroppingAlphaMatchesPillowConvertRGB() throws {
        let t = try u8Tensors("decode.safetensors")
        for name in ["rgb", "rgba", "l", "la", "p", "rgb16"] {
            let expected = try XCTUnwrap(t[name], name)
            let image = try PNGImage.readDroppingAlpha(path: Self.folder + "/decode/\(name).png")
            XCTAssertEqual([image.height, image.width, 3], expected.shape, name)
            XCTAssertEqual(image.rgb, expected.bytes, name)
        }
    }

    func testDecodeDroppingAlphaErrorsNameTheFile() throws {
        let png = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.folder + "/decode/rgb.png")))
        for bytes in [Array(png.prefix(png.count - 20)), Array("not a png".utf8), []] {
            XCTAssertThrowsError(try PNGImage.decodeDroppingAlpha(bytes, file: "in.png")) {
                XCTAssertTrue(String(describing: $0).hasPrefix("in.png: "), String(describing: $0))
            }
        }
    }
}
