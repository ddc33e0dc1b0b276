import Foundation
import XCTest
@testable import PixconvRuntime

/// The aspect-ratio bins against diffusers' tables and `classify_height_width_bin`
/// (fixtures/sigma/bins.json, scripts/make_sigma_reference.py): 195 sizes per table, among them a
/// ratio on every key of the 2048 table.
final class ResolutionBinsTests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    private func fixture() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.root + "/fixtures/sigma/bins.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func testTablesEqualDiffusers() throws {
        let tables = try XCTUnwrap(try fixture()["tables"] as? [String: [[Any]]])
        for (name, sample) in [("256", 32), ("512", 64), ("1024", 128), ("2048", 256)] {
            let want = try XCTUnwrap(tables[name])
            let have = try ResolutionBins.table(sampleSize: sample)
            XCTAssertEqual(have.count, want.count, name)
            for (h, w) in zip(have, want) {
                XCTAssertEqual(h.key, Double(try XCTUnwrap(w[0] as? String)), name)
                XCTAssertEqual([h.height, h.width], [(w[1] as? NSNumber)?.intValue, (w[2] as? NSNumber)?.intValue], name)
            }
        }
    }

    func testClassifyEqualsDiffusers() throws {
        let cases = try XCTUnwrap(try fixture()["cases"] as? [String: [[NSNumber]]])
        var checked = 0
        for (name, sample) in [("256", 32), ("512", 64), ("1024", 128), ("2048", 256)] {
            for c in try XCTUnwrap(cases[name]) {
                let bin = try ResolutionBins.classify(height: c[0].intValue, width: c[1].intValue, sampleSize: sample)
                XCTAssertEqual([bin.height, bin.width], [c[2].intValue, c[3].intValue], "\(name): \(c[0])×\(c[1])")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 700)
    }

    func testOtherSampleSizesAreRefused() {
        XCTAssertThrowsError(try ResolutionBins.classify(height: 512, width: 512, sampleSize: 8))
    }
}
