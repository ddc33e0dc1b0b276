import XCTest
@testable import PixconvStore

/// Family detection's order of evidence and the `--family` syntax.
final class ModelFamilyTests: XCTestCase {
    private func detect(_ build: (inout FamilyDetection.Evidence) -> Void) -> FamilyDetection {
        var e = FamilyDetection.Evidence()
        build(&e)
        return FamilyDetection.detect(e)
    }

    func testEvidenceOrder() {
        XCTAssertEqual(detect { $0.pipelineClass = "PixArtSigmaPipeline"; $0.schedulerClass = "LCMScheduler" }.family, .sigma)
        XCTAssertEqual(detect { $0.pipelineClass = "PixArtAlphaPipeline"; $0.schedulerClass = "LCMScheduler" }.family, .lcm)
        XCTAssertEqual(detect { $0.schedulerClass = "DDPMScheduler" }.family, .dmd)
        XCTAssertEqual(detect { $0.pipelineClass = "PixArtAlphaPipeline"; $0.vaeScalingFactor = 0.13025 }.family, .alpha)
        XCTAssertEqual(detect { $0.vaeScalingFactor = 0.13025 }.family, .sigma)
        XCTAssertEqual(detect { $0.vaeScalingFactor = 0.18215 }.certain, false)
        let micro = detect { $0.microConditions = true }
        XCTAssertEqual(micro.family, .alpha)
        XCTAssertTrue(micro.certain)
        let none = detect { _ in }
        XCTAssertEqual(none.family, .alpha)
        XCTAssertFalse(none.certain)
        XCTAssertTrue(none.reason.contains("--family"))
        let recorded = FamilyDetection(family: .dmd, reason: "x")
        XCTAssertEqual(detect { $0.recorded = recorded; $0.pipelineClass = "PixArtSigmaPipeline" }, recorded)
        var e = FamilyDetection.Evidence()
        e.pipelineClass = "PixArtSigmaPipeline"
        XCTAssertEqual(FamilyDetection.detect(e, choice: FamilyChoice(family: .lcm)).family, .lcm)
    }

    func testChoiceParsing() {
        XCTAssertEqual(FamilyChoice(parsing: "sigma"), FamilyChoice(family: .sigma))
        XCTAssertEqual(FamilyChoice(parsing: "pixart-sigma-1024"), FamilyChoice(family: .sigma, imageSize: 1024))
        XCTAssertEqual(FamilyChoice(parsing: "Sigma-2K"), FamilyChoice(family: .sigma, imageSize: 2048))
        XCTAssertEqual(FamilyChoice(parsing: "alpha-1024-ms"), FamilyChoice(family: .alpha, imageSize: 1024))
        XCTAssertEqual(FamilyChoice(parsing: "dmd-512")?.sampleSize, 64)
        for bad in ["", "gamma", "sigma-700", "sigma-", "-1024", "pixart-"] { XCTAssertNil(FamilyChoice(parsing: bad), bad) }
    }

    /// One table: each family's defaults as diffusers and the checkpoints' authors run them.
    func testDefaultsTable() {
        XCTAssertEqual(ModelFamily.sigma.defaults.textLength, 300)
        XCTAssertEqual(ModelFamily.alpha.defaults.textLength, 120)
        XCTAssertEqual(ModelFamily.lcm.defaults.steps, 4)
        XCTAssertEqual(ModelFamily.lcm.defaults.guidanceScale, 0)
        XCTAssertEqual(ModelFamily.dmd.defaults.timesteps, [400])
        XCTAssertEqual(ModelFamily.dmd.defaults.scheduler, "ddpm")
        XCTAssertEqual(ModelFamily.sigma.displayName(sampleSize: 256), "pixart-sigma-2048")
        XCTAssertEqual(ModelFamily.alpha.displayName(sampleSize: 8), "pixart-alpha")
    }
}
