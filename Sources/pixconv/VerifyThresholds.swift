import Foundation
import PixconvCore
import PixconvStore

/// Default pass thresholds of `verify`, per weight type, chosen from measurements on the bundled
/// tiny random pipelines and the trained demo model (`formats/verify.md` has the figures behind
/// them and says which set each comes from: q8_0 and q4_0 from the demo model).
enum VerifyThresholds {
    static func defaults(for weightType: String) -> (psnr: Double, ssim: Double) {
        switch weightType {
        case "f32": return (40, 0.99)
        case "f16", "bf16": return (30, 0.95)
        case "q8_0": return (15, 0.75)
        case "q4_0": return (10, 0.45)
        default: return (40, 0.99)
        }
    }

    /// The lowest-precision target among the models that are pixconv stores; "f32" otherwise.
    static func weightType(of models: [String]) -> String {
        let order = ["q4_0", "q8_0", "bf16", "f16", "f32"]
        var found = "f32"
        for model in models {
            guard let input = try? ModelInput(path: model), let store = input.store, let policy = store.precisionPolicy
            else { continue }
            let target = policy.split(separator: ";").first.map { String($0).replacingOccurrences(of: "target=", with: "") } ?? "f32"
            if let a = order.firstIndex(of: target), let b = order.firstIndex(of: found), a < b { found = target }
        }
        return found
    }

    static func table(_ r: Verify.ComparisonReport) -> String {
        var out = "reference \(r.reference) — weights \(r.weightType), thresholds PSNR ≥ \(r.minPSNR) dB, SSIM ≥ \(r.minSSIM)\n"
        let width = max(4, r.cases.map(\.name.count).max() ?? 4)
        out += "case".padding(toLength: width, withPad: " ", startingAt: 0) + "   PSNR dB    SSIM  max diff  result\n"
        for c in r.cases {
            let psnr = c.psnr.isFinite ? String(format: "%9.2f", c.psnr) : "      inf"
            out += c.name.padding(toLength: width, withPad: " ", startingAt: 0)
                + " \(psnr)  " + String(format: "%6.4f  %8d  ", c.ssim, c.maxDifference) + (c.passed ? "ok" : "FAIL") + "\n"
        }
        out += r.passed ? "all \(r.cases.count) case(s) pass" : "\(r.cases.filter { !$0.passed }.count) of \(r.cases.count) case(s) fail"
        return out
    }
}
