import Foundation
import PixconvReaders
import PixconvImage
import XCTest

@testable import PixconvRuntime

/// LCM, DDPM, custom timesteps and the scheduler registry against diffusers
/// (fixtures/fewstep, fixtures/reference-lcm, fixtures/reference-dmd: scripts/make_fewstep_reference.py).
final class FewStepSchedulerTests: XCTestCase {
    private func fewstep() throws -> (DitSafetensors, [String: [String: Any]], [Int]) {
        let st = try DitSafetensors(path: ditFixturePath("fewstep/scheduler.safetensors"))
        let data = try Data(contentsOf: URL(fileURLWithPath: ditFixturePath("fewstep/scheduler.json")))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let runs = try XCTUnwrap(json["runs"] as? [String: [String: Any]])
        let seeds = try XCTUnwrap(json["noise_generators"] as? [Int])
        return (st, runs, seeds)
    }

    /// The run's scheduler, built through the registry from its diffusers class and config.
    private func scheduler(_ run: [String: Any]) throws -> any Scheduler {
        let className = try XCTUnwrap(run["class"] as? String)
        let kind = try XCTUnwrap(SchedulerRegistry.kind(className: className), className)
        let configData = try JSONSerialization.data(withJSONObject: try XCTUnwrap(run["config"]))
        let config = try SchedulerConfig.decode(json: configData)
        if let list = run["schedule"] as? [Int] { return try makeScheduler(name: kind.name, config: config, steps: 0, timesteps: list) }
        return try makeScheduler(name: kind.name, config: config, steps: try XCTUnwrap(run["schedule"] as? Int))
    }

    func testRegistryNamesClassesAndDefaults() throws {
        XCTAssertEqual(SchedulerRegistry.names, ["dpm++2m", "ddim", "euler", "lcm", "ddpm"])
        XCTAssertEqual(SchedulerRegistry.namesList, "dpm++2m, ddim, euler, lcm or ddpm")
        XCTAssertEqual(SchedulerRegistry.kind(named: "DPM")?.name, "dpm++2m")
        XCTAssertEqual(SchedulerRegistry.kind(named: "euler-discrete")?.name, "euler")
        XCTAssertNil(SchedulerRegistry.kind(named: "lms"))
        XCTAssertEqual(ReferenceBundle.schedulers, Set(SchedulerRegistry.names))
        XCTAssertEqual(SchedulerRegistry.all.filter(\.acceptsCustomTimesteps).map(\.name), ["dpm++2m", "euler", "lcm", "ddpm"])
        for (folder, name) in [("tiny-pixart-512", "dpm++2m"), ("tiny-pixart-lcm", "lcm"), ("tiny-pixart-dmd", "ddpm")] {
            let config = try SchedulerConfig.load(path: ditFixturePath("\(folder)/scheduler/scheduler_config.json"))
            XCTAssertEqual(try SchedulerRegistry.defaultKind(for: config).name, name, folder)
        }
        XCTAssertEqual(try SchedulerRegistry.defaultKind(for: SchedulerConfig()).name, "dpm++2m")
        var odd = SchedulerConfig()
        odd.className = "UniPCMultistepScheduler"
        XCTAssertThrowsError(try SchedulerRegistry.defaultKind(for: odd)) { error in
            XCTAssertTrue("\(error)".contains("UniPCMultistepScheduler"), "\(error)")
            XCTAssertTrue("\(error)".contains("--scheduler"), "\(error)")
        }
        let lcm = try SchedulerConfig.load(path: ditFixturePath("tiny-pixart-lcm/scheduler/scheduler_config.json"))
        XCTAssertEqual(lcm.originalInferenceSteps, 50)
        XCTAssertEqual(lcm.timestepScaling, 10)
        XCTAssertEqual(lcm.clipSample, false)
    }

    func testTimestepsMatchDiffusers() throws {
        let (st, runs, _) = try fewstep()
        XCTAssertEqual(runs.count, 16)
        for (key, run) in runs.sorted(by: { $0.key < $1.key }) {
            let s = try scheduler(run)
            let expected = try XCTUnwrap(run["timesteps"] as? [Double]).map { Float($0) }
            XCTAssertEqual(s.timesteps, expected, key)
            XCTAssertEqual(s.timesteps, try st.floats("\(key)_timesteps"), key)
            XCTAssertEqual(s.initNoiseSigma, Float(try XCTUnwrap(run["init_noise_sigma"] as? Double)), key)
        }
    }

    /// Every step on fixed inputs, the noise drawn from two generators (one per image) as diffusers'
    /// `step(..., generator=[g11, g12])`: `prev_sample` and the predicted x0 (`[1]`).
    func testStepLoopsMatchDiffusers() throws {
        let (st, runs, seeds) = try fewstep()
        var report: [String] = []
        for (key, run) in runs.sorted(by: { $0.key < $1.key }) {
            var s = try scheduler(run)
            var generators = seeds.map { TorchGenerator(seed: UInt64($0)) }
            var x = try st.floats("\(key)_x0")
            var worst: Float = 0
            for i in 0..<s.timesteps.count {
                let out = try s.step(modelOutput: try st.floats("\(key)_model_out_\(i)"), stepIndex: i, sample: x,
                                     generators: &generators)
                let expected = try st.floats("\(key)_prev_\(i)")
                let scale = max(1, expected.map { abs($0) }.max() ?? 1)
                let d = ditMaxDiff(out.prevSample, expected)
                XCTAssertLessThanOrEqual(d.abs / scale, 2e-6, "\(key) step \(i)")
                worst = max(worst, d.abs / scale)
                if st.info(for: "\(key)_x0pred_\(i)") != nil {
                    let x0 = try XCTUnwrap(out.predOriginalSample, "\(key) step \(i): diffusers returns an x0")
                    let want = try st.floats("\(key)_x0pred_\(i)")
                    let dx = ditMaxDiff(x0, want)
                    XCTAssertLessThanOrEqual(dx.abs / max(1, want.map { abs($0) }.max() ?? 1), 2e-6, "\(key) step \(i) x0")
                } else {
                    XCTAssertNil(out.predOriginalSample, key)
                }
                x = out.prevSample
            }
            report.append("\(key): \(worst)")
        }
        print("few-step scheduler loops, max relative diff: " + report.joined(separator: ", "))
    }

    func testNoiseComesFromTheGenerators() throws {
        let config = try SchedulerConfig.load(path: ditFixturePath("tiny-pixart-lcm/scheduler/scheduler_config.json"))
        var a = try LCMScheduler(config: config, steps: 4)
        var b = a
        let x = [Float](repeating: 0.5, count: 32), e = [Float](repeating: 0.1, count: 32)
        var g1 = [TorchGenerator(seed: 1), TorchGenerator(seed: 2)]
        var g2 = [TorchGenerator(seed: 1), TorchGenerator(seed: 3)]
        let o1 = try a.step(modelOutput: e, stepIndex: 0, sample: x, generators: &g1)
        let o2 = try b.step(modelOutput: e, stepIndex: 0, sample: x, generators: &g2)
        XCTAssertEqual(Array(o1.prevSample[0..<16]), Array(o2.prevSample[0..<16]))  // image 0: same generator
        XCTAssertNotEqual(Array(o1.prevSample[16...]), Array(o2.prevSample[16...]))
        XCTAssertEqual(o1.predOriginalSample, o2.predOriginalSample)
        var c = try LCMScheduler(config: config, steps: 4)
        XCTAssertThrowsError(try c.step(modelOutput: e, stepIndex: 0, sample: x)) { error in
            XCTAssertEqual(error as? SchedulerError, .needsGenerator(images: 0, values: 32))
        }
        // The last LCM step and a DDPM step at t = 0 draw nothing.
        var last = try LCMScheduler(config: config, customTimesteps: [259])
        var none: [TorchGenerator] = []
        XCTAssertNoThrow(try last.step(modelOutput: e, stepIndex: 0, sample: x, generators: &none))
        var ddpm = try DDPMScheduler(config: config, customTimesteps: [0])
        XCTAssertNoThrow(try ddpm.step(modelOutput: e, stepIndex: 0, sample: x, generators: &none))
    }

    func testScheduleErrors() throws {
        let config = SchedulerConfig()
        XCTAssertThrowsError(try makeScheduler(name: "ddim", config: config, steps: 1, timesteps: [400])) { error in
            XCTAssertEqual(error as? SchedulerError, .customTimestepsUnsupported("ddim"))
        }
        for bad in [[400, 400], [100, 200], [1000], [], [5, -1]] {
            for name in ["lcm", "ddpm", "dpm++2m", "euler"] {
                XCTAssertThrowsError(try makeScheduler(name: name, config: config, steps: 1, timesteps: bad), "\(name) \(bad)")
            }
        }
        XCTAssertThrowsError(try makeScheduler(name: "lcm", config: config, steps: 51))  // > original_inference_steps
        XCTAssertNoThrow(try makeScheduler(name: "lcm", config: config, steps: 50))
        var learned = config
        learned.varianceType = "learned_range"
        XCTAssertThrowsError(try makeScheduler(name: "ddpm", config: learned, steps: 10))
        var thresholding = config
        thresholding.thresholding = true
        XCTAssertThrowsError(try makeScheduler(name: "lcm", config: thresholding, steps: 4))
        XCTAssertThrowsError(try makeScheduler(name: "ddpm", config: thresholding, steps: 4))
    }

    // MARK: whole pipeline

    /// pixconv on tiny-pixart-512 with the bundle's scheduler folder swapped in (two `--model` paths)
    /// against diffusers' images: ≥ 80 dB each.
    private func runBundle(_ bundle: String, schedulerFolder: String) throws -> PixArtPipeline {
        let folder = ditFixturePath(bundle)
        let reference = try ReferenceBundle(folder: folder)
        let components = try PipelineComponents.load(paths: [ditFixturePath("tiny-pixart-512"), ditFixturePath(schedulerFolder)])
        let pipeline = try PixArtPipeline(components: components)
        for c in reference.cases {
            let image = try XCTUnwrap(try pipeline.generate(c.request).first)
            let want = try DitSafetensors(path: folder + "/" + c.name + ".safetensors").floats("image")
            let p = try ImageMetrics.psnr(want, image.pixels)
            print("few-step pipeline \(bundle)/\(c.name): PSNR \(p) dB")
            XCTAssertGreaterThanOrEqual(p, 80, "\(bundle)/\(c.name)")
        }
        return pipeline
    }

    func testLCMImagesMatchDiffusers() throws {
        let pipeline = try runBundle("reference-lcm", schedulerFolder: "tiny-pixart-lcm")
        XCTAssertEqual(pipeline.components.schedulerConfig.className, "LCMScheduler")
        // A batch of two with a list of generators: each image's step noise comes from its own generator.
        var request = GenerationRequest(prompt: "a red fox in the snow")
        request.seed = 5
        request.count = 2
        request.steps = 4
        request.guidanceScale = 0
        request.scheduler = "lcm"
        let images = try pipeline.generate(request)
        let want = try DitSafetensors(path: ditFixturePath("reference-lcm/batch2.safetensors")).floats("images")
        XCTAssertEqual(images.count, 2)
        let got = images.flatMap(\.pixels)
        let per = got.count / 2
        for i in 0..<2 {
            let p = try ImageMetrics.psnr(Array(want[(i * per)..<((i + 1) * per)]), Array(got[(i * per)..<((i + 1) * per)]))
            print("few-step pipeline reference-lcm/batch2[\(i)]: PSNR \(p) dB")
            XCTAssertGreaterThanOrEqual(p, 80, "batch2 image \(i)")
        }
    }

    func testDMDAndDDPMImagesMatchDiffusers() throws {
        let pipeline = try runBundle("reference-dmd", schedulerFolder: "tiny-pixart-dmd")
        XCTAssertEqual(pipeline.components.schedulerConfig.className, "DDPMScheduler")
        XCTAssertEqual(pipeline.components.schedulerConfig.clipSample, false)
    }

    func testBundleTimestepsField() throws {
        let reference = try ReferenceBundle(folder: ditFixturePath("reference-dmd"))
        let dmd = try XCTUnwrap(reference.cases.first { $0.name == "dmd-1step" })
        XCTAssertEqual(dmd.timesteps, [400])
        XCTAssertEqual(dmd.steps, 1)
        XCTAssertEqual(dmd.request.timesteps, [400])
        let dir = NSTemporaryDirectory() + "fewstep-bundle-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func write(_ caseJSON: String) throws {
            try Data("{\"cases\": [\(caseJSON)]}".utf8).write(to: URL(fileURLWithPath: dir + "/cases.json"))
        }
        try write(#"{"name": "a", "prompt": "p", "height": 16, "width": 16, "scheduler": "ddim", "timesteps": [400], "image": "a.png"}"#)
        XCTAssertThrowsError(try ReferenceBundle(folder: dir)) { XCTAssertTrue("\($0)".contains("does not take"), "\($0)") }
        try write(#"{"name": "a", "prompt": "p", "height": 16, "width": 16, "scheduler": "ddpm", "steps": 3, "timesteps": [400], "image": "a.png"}"#)
        XCTAssertThrowsError(try ReferenceBundle(folder: dir)) { XCTAssertTrue("\($0)".contains("steps"), "\($0)") }
        try write(#"{"name": "a", "prompt": "p", "height": 16, "width": 16, "scheduler": "lcm", "timesteps": [1.5], "image": "a.png"}"#)
        XCTAssertThrowsError(try ReferenceBundle(folder: dir))
        try write(#"{"name": "a", "prompt": "p", "height": 16, "width": 16, "scheduler": "lcm", "timesteps": [999, 499], "image": "a.png"}"#)
        let ok = try ReferenceBundle(folder: dir)
        XCTAssertEqual(ok.cases[0].steps, 2)
        try ReferenceBundle.write(generator: "t", cases: ok.cases, to: dir)
        XCTAssertEqual(try ReferenceBundle(folder: dir).cases[0].timesteps, [999, 499])
    }
}
