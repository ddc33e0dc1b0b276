import Foundation
import XCTest

@testable import PixconvRuntime

final class SchedulerTests: XCTestCase {
    private func ditSchedulerFixtures() throws -> (DitSafetensors, [String: Any], SchedulerConfig) {
        let st = try DitSafetensors(path: ditFixturePath("dit/scheduler.safetensors"))
        let data = try Data(contentsOf: URL(fileURLWithPath: ditFixturePath("dit/scheduler.json")))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let config = try SchedulerConfig.load(path: ditFixturePath("dit/scheduler_config.json"))
        return (st, json, config)
    }

    private let ditNames = ["dpm": "dpm++2m", "ddim": "ddim", "euler": "euler"]

    func testConfigDecodesPixArtFileWithInfinity() throws {
        let config = try SchedulerConfig.load(path: ditFixturePath("tiny-pixart-512/scheduler/scheduler_config.json"))
        XCTAssertEqual(config.lambdaMinClipped, -.infinity)
        XCTAssertEqual(config.algorithmType, "dpmsolver++")
        XCTAssertEqual(config.timestepSpacing, "linspace")
        XCTAssertNil(config.clipSample)  // DDIM takes its default
        let empty = try SchedulerConfig.decode(json: Data("{}".utf8))
        XCTAssertEqual(empty, SchedulerConfig())
        XCTAssertEqual(empty.numTrainTimesteps, 1000)
        XCTAssertEqual(empty.solverOrder, 2)
    }

    func testTrainingTablesMatchTorch() throws {
        let (st, _, config) = try ditSchedulerFixtures()
        let table = try SchedulerNoiseTable(config)
        XCTAssertEqual(ditMaxDiff(table.betas, try st.floats("betas")).ulps, 0)
        XCTAssertEqual(ditMaxDiff(table.alphasCumprod, try st.floats("alphas_cumprod")).ulps, 0)
        // σ = √((1−ᾱ)/ᾱ): torch's float32 sqrt here is MKL's vector sqrt, not always correctly rounded
        // (156 of 1000 values differ from IEEE sqrt by 1 ulp on the x86 machine that made the fixture).
        let d = ditMaxDiff(table.sigmas, try st.floats("train_sigmas"))
        XCTAssertLessThanOrEqual(d.ulps, 1, "train sigmas: \(d.abs)")
    }

    func testTimestepsSigmasAndInitNoiseSigma() throws {
        let (st, json, config) = try ditSchedulerFixtures()
        let schedulers = try XCTUnwrap(json["schedulers"] as? [String: Any])
        for (key, name) in ditNames {
            let info = try XCTUnwrap(schedulers[key] as? [String: Any])
            let expectedTimesteps = try XCTUnwrap(info["timesteps"] as? [String: [Double]])
            let expectedInit = try XCTUnwrap(info["init_noise_sigma"] as? [String: Double])
            for steps in [2, 10, 14, 20, 25] {
                let s = try makeScheduler(name: name, config: config, steps: steps)
                XCTAssertEqual(s.timesteps, try XCTUnwrap(expectedTimesteps["\(steps)"]).map { Float($0) }, "\(key) \(steps)")
                XCTAssertEqual(ditMaxDiff(s.timesteps, try st.floats("\(key)_\(steps)_timesteps")).ulps, 0)
                XCTAssertEqual(s.initNoiseSigma, Float(try XCTUnwrap(expectedInit["\(steps)"])), "\(key) \(steps)")
                let sigmas: [Float]? = (s as? DPMSolverMultistep)?.sigmas ?? (s as? EulerDiscreteScheduler)?.sigmas
                if let sigmas {
                    let d = ditMaxDiff(sigmas, try st.floats("\(key)_\(steps)_sigmas"))
                    XCTAssertLessThanOrEqual(d.ulps, 1, "\(key) \(steps) sigmas: \(d.abs)")
                }
            }
        }
        // formats/pixart.md §2, 20 steps
        let dpm20 = try DPMSolverMultistep(config: config, steps: 20)
        XCTAssertEqual(dpm20.timestepValues, [999, 949, 899, 849, 799, 749, 699, 649, 599, 549, 500, 450, 400, 350, 300,
                                              250, 200, 150, 100, 50])
    }

    func testFullLoopsMatchDiffusers() throws {
        let (st, json, config) = try ditSchedulerFixtures()
        let loops = try XCTUnwrap(json["loops"] as? [Int])
        var report: [String] = []
        for (key, name) in ditNames.sorted(by: { $0.key < $1.key }) {
            for steps in loops {
                var s = try makeScheduler(name: name, config: config, steps: steps)
                let noise = try st.floats("\(key)_loop\(steps)_noise")
                let outs = try st.floats("\(key)_loop\(steps)_model_out")
                let scaled = try st.floats("\(key)_loop\(steps)_scaled")
                let samples = try st.floats("\(key)_loop\(steps)_samples")
                let n = noise.count
                var x = noise.map { $0 * s.initNoiseSigma }
                var worst: Float = 0
                for i in 0..<steps {
                    let xin = try s.scaleModelInput(x, stepIndex: i)
                    let dIn = ditMaxDiff(xin, Array(scaled[(i * n)..<((i + 1) * n)]))
                    let expected = Array(samples[(i * n)..<((i + 1) * n)])
                    x = try s.step(modelOutput: Array(outs[(i * n)..<((i + 1) * n)]), stepIndex: i, sample: x)
                    let d = ditMaxDiff(x, expected)
                    let scale = max(1, expected.map { abs($0) }.max() ?? 1)
                    XCTAssertLessThanOrEqual(d.abs / scale, 2e-6, "\(key) \(steps) steps, step \(i)")
                    XCTAssertLessThanOrEqual(dIn.abs / scale, 2e-6, "\(key) \(steps) steps, input \(i)")
                    worst = max(worst, d.abs / scale)
                }
                report.append("\(key)/\(steps): \(worst)")
            }
        }
        print("scheduler loops, max relative diff: " + report.joined(separator: ", "))
    }

    func testFinalDPMStepReturnsPredictedX0() throws {
        let (_, _, config) = try ditSchedulerFixtures()
        var s = try DPMSolverMultistep(config: config, steps: 1)
        XCTAssertEqual(s.sigmas.last, 0)
        let x: [Float] = [1.5, -2, 0.25, 40]
        let eps: [Float] = [0.5, 0.1, -1, 2]
        let sigma = s.sigmas[0]
        let alpha = 1 / (sigma * sigma + 1).squareRoot()
        let out = try s.step(modelOutput: eps, stepIndex: 0, sample: x)
        for i in 0..<4 {
            XCTAssertFalse(out[i].isNaN)
            XCTAssertEqual(out[i], (x[i] - sigma * alpha * eps[i]) / alpha)
        }
    }

    func testStepErrors() throws {
        var s = try makeScheduler(name: "dpm++2m", config: SchedulerConfig(), steps: 5)
        XCTAssertThrowsError(try s.step(modelOutput: [0], stepIndex: 1, sample: [0]))
        XCTAssertThrowsError(try s.step(modelOutput: [0, 1], stepIndex: 0, sample: [0]))
        XCTAssertThrowsError(try makeScheduler(name: "lms", config: SchedulerConfig(), steps: 5))
        XCTAssertThrowsError(try makeScheduler(name: "ddim", config: SchedulerConfig(), steps: 0))
        XCTAssertThrowsError(try makeScheduler(name: "euler", config: SchedulerConfig(), steps: 1001))
        var karras = SchedulerConfig()
        karras.useKarrasSigmas = true
        XCTAssertThrowsError(try makeScheduler(name: "dpm++2m", config: karras, steps: 5))
    }
}
