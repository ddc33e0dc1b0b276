import ArgumentParser
import Foundation
import PixconvStore

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert and quantize checkpoints into one GGUF store, or into diffusers safetensors.",
        discussion: """
            Inputs: a diffusers pipeline folder, a component folder (transformer/, text_encoder/, vae/,
            tokenizer/), a .safetensors file, a sharded *.safetensors.index.json, or a torch checkpoint
            such as the original PixArt-XL-2-512x512.pth. Components are detected from tensor names and
            shapes; several inputs combine into one store.

            Precision policy: 1-D tensors, tensors of at most 1024 elements, scale_shift_tables,
            embedding and position tables and norms stay f32; for q8_0/q4_0, rows whose length is not a
            multiple of 32 fall back to f16. --keep-f32 keeps more (glob patterns, '*' matches anything).

            Model family: the store records which PixArt it holds (pixart-alpha, pixart-sigma,
            pixart-lcm, pixart-dmd), found from model_index.json's pipeline class, the scheduler config
            (LCMScheduler, DDPMScheduler), the VAE (SDXL's: Σ) or micro-conditions (α 1024-MS), else α
            is assumed; generate takes that family's defaults. --family overrides it, and gives the size
            a PixArt-Σ MS checkpoint in the original layout does not store (--family sigma-1024).

            The output is written under a temporary name and renamed when complete; an existing output
            is kept unless --force.

            Examples:
              pixconv convert PixArt-XL-2-512x512.pth t5-v1_1-xxl/ sd-vae-ft-ema/ -o pixart-512.q8_0.gguf --type q8_0
              pixconv convert PixArt-XL-2-1024-MS/ -o pixart-1024.f16.gguf --type f16 --keep-f32 'dit.proj_out.*'
              pixconv convert PixArt-XL-2-512x512.pth -o transformer.safetensors --format safetensors --type f16
              pixconv convert PixArt-XL-2-1024-MS/ -o pixart-diffusers/ --format safetensors --type bf16 --json
              pixconv convert PixArt-Sigma-XL-2-1024-MS.pth t5/ sdxl-vae/ -o sigma-1024.q8_0.gguf --type q8_0 --family sigma-1024
            """)

    @Argument(help: "Input checkpoints, files or folders.")
    var inputs: [String] = []

    @Option(name: .shortAndLong, help: "Output: a .gguf store, or a .safetensors file / folder with --format safetensors.")
    var output: String

    @Option(help: "Target type: f32, f16, bf16, q8_0 (or int8), q4_0 (or int4).")
    var type: String = "f16"

    @Option(help: "Output format: gguf or safetensors.")
    var format: String = "gguf"

    @Option(name: .customLong("keep-f32"), help: "Keep tensors whose name matches this glob in f32 (repeatable).")
    var keepF32: [String] = []

    @Flag(help: "Use the EMA weights (state_dict_ema) of a training checkpoint.")
    var ema = false

    @Option(help: "Model family: \(FamilyChoice.help) (default: detected).")
    var family: String?

    @Flag(help: "Replace an existing output.")
    var force = false

    @Flag(help: "Print a JSON summary.")
    var json = false

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one input") }
        guard ["f32", "f16", "bf16", "q8_0", "q4_0", "int8", "int4"].contains(type.lowercased()) else {
            throw ValidationError("unknown --type '\(type)': use f32, f16, bf16, q8_0 (int8) or q4_0 (int4)")
        }
        guard ConvertOptions.Format(rawValue: format) != nil else {
            throw ValidationError("unknown --format '\(format)': use gguf or safetensors")
        }
        if let family, FamilyChoice(parsing: family) == nil {
            throw ValidationError("unknown --family '\(family)': use \(FamilyChoice.help)")
        }
    }

    func run() throws {
        var options = ConvertOptions()
        options.type = ["int8": "q8_0", "int4": "q4_0"][type.lowercased()] ?? type.lowercased()
        options.format = ConvertOptions.Format(rawValue: format) ?? .gguf
        options.keepF32 = keepF32
        options.ema = ema
        options.replace = force
        options.family = family.flatMap(FamilyChoice.init(parsing:))
        let bar = ProgressBar(label: "converting", total: 1, unit: "B", enabled: !json && isatty(2) == 1)
        var lastTotal = 0
        var progressBar = bar
        let summary = try Converter.run(inputs: inputs, output: output, options: options) { _, _, bytes, total in
            if total != lastTotal {
                lastTotal = total
                progressBar = ProgressBar(label: "converting", total: total, unit: "B", enabled: bar.isEnabled)
            }
            progressBar.set(bytes)
        }
        progressBar.finish()
        if json {
            try printJSON(summary)
        } else {
            let rate = summary.seconds > 0 ? Double(summary.inputBytes) / summary.seconds : 0
            print("wrote \(summary.output): \(summary.tensorCount) tensors (\(summary.components.joined(separator: ", "))), "
                  + "\(formatBytes(summary.outputBytes)) from \(formatBytes(summary.inputBytes)) in "
                  + String(format: "%.2f s (%@/s)", summary.seconds, formatBytes(Int(rate))))
            if let f = summary.family { print("family: \(f) (\(summary.familyReason ?? ""))") }
            for warning in summary.warnings { printError("warning: " + warning) }
        }
    }
}
