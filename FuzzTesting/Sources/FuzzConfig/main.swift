// libFuzzer harness: component and scheduler configs (PixconvRuntime `SchedulerConfig`,
// `PixArtConfig`, `T5Config`, `VAEConfig`), which reach the runtime from a model folder's
// config.json files or from a store's `pixconv.*.config` metadata. Each is decoded from the input
// and validated; the scheduler config then builds every scheduler (`makeScheduler`) and runs all
// its steps on a tiny latent. The input is also read as a `pixconv verify` prompts file
// (`ReferenceBundle.prompts`, JSONSerialization). See formats/fuzzing.md.
import Foundation
import FuzzSupport
import PixconvRuntime

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let json = Data(fuzzInput(data, size))
    if let config = try? SchedulerConfig.decode(json: json) {
        for name in ["dpm++2m", "ddim", "euler"] {
            for steps in [1, 2, 7, 20] {
                guard var scheduler = try? makeScheduler(name: name, config: config, steps: steps) else { continue }
                var latent: [Float] = [0.5, -1, 2, 0]
                for i in 0..<steps {
                    guard let input = try? scheduler.scaleModelInput(latent, stepIndex: i),
                          let next = try? scheduler.step(modelOutput: input.map { $0 * 0.1 }, stepIndex: i, sample: latent)
                    else { break }
                    latent = next
                }
            }
        }
    }
    if let c = try? PixArtConfig.decode(json: json) { try? c.validate() }
    // T5 and VAE configs reach the runtime as Strings (`Component.configJSON`), decoded like
    // `PipelineComponents.load` does.
    let text = Data(String(decoding: json, as: UTF8.self).utf8)
    if let c = try? ConfigJSON.decode(T5Config.self, from: text) { try? c.validate() }
    if let c = try? ConfigJSON.decode(VAEConfig.self, from: text) { try? c.validate() }
    // `VAEDecoder(component:)` parses the raw bytes with Foundation's plain JSONDecoder.
    if let c = try? VAEConfig(json: [UInt8](json)) { try? c.validate() }
    // Not for an empty file: swift-foundation's `FileManager.contents(atPath:)` leaks a 4 KiB buffer
    // on a 0-byte file (`readBytesFromFile`, Swift 6.3.1), which LeakSanitizer reports.
    if size > 0 {
        let path = writeScratchFile(fuzzInput(data, size), tag: "prompts")
        _ = try? ReferenceBundle.Case.prompts(path: path)
    }
    return 0
}

runFuzzer(fuzzConfig)
