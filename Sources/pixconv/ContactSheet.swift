import Foundation
import PixconvImage
import PixconvRuntime
import PixconvStore

extension Generate {
    /// `--prompts FILE`: one image per prompt (`base` with that prompt: same seed and settings),
    /// tiled row by row into `output`.
    func contactSheet(pipeline: PixArtPipeline, base: GenerationRequest, promptFile: String, start: Date) throws {
        let text: String
        do { text = try String(contentsOfFile: promptFile, encoding: .utf8) } catch {
            throw UsageError("cannot read --prompts \(promptFile): \(error.localizedDescription)")
        }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !lines.isEmpty, lines.count <= 4096 else {
            throw UsageError("--prompts \(promptFile): needs 1 to 4096 prompts, found \(lines.count)")
        }
        var tiles: [(rgb: [UInt8], width: Int, height: Int)] = []
        let bar = ProgressBar(label: "contact sheet", total: lines.count, enabled: !json && isatty(2) == 1)
        for line in lines {
            var request = base
            request.prompt = line
            guard let image = try pipeline.generate(request).first else { throw UsageError("no image for \(line.debugDescription)") }
            tiles.append((image.rgb8, image.width, image.height))
            bar.advance()
        }
        bar.finish()
        let gap = 2, w = tiles[0].width, h = tiles[0].height
        let cols = min(columns, tiles.count), rows = (tiles.count + cols - 1) / cols
        let sheetW = cols * (w + gap) + gap, sheetH = rows * (h + gap) + gap
        var sheet = [UInt8](repeating: 255, count: sheetW * sheetH * 3)
        for (k, tile) in tiles.enumerated() {
            let x0 = gap + (k % cols) * (w + gap), y0 = gap + (k / cols) * (h + gap)
            for y in 0..<h {
                let dst = ((y0 + y) * sheetW + x0) * 3
                sheet.replaceSubrange(dst..<dst + w * 3, with: tile.rgb[(y * w * 3)..<((y + 1) * w * 3)])
            }
        }
        var chunks: [(key: String, value: String)] = [
            ("prompts", lines.joined(separator: "\n")), ("seed", String(seed)), ("steps", String(base.steps)),
            ("guidance_scale", String(base.guidanceScale)), ("scheduler", base.scheduler), ("generator", "pixconv \(PixconvVersion.string)"),
        ]
        for model in models {
            chunks.append(("model", "\((model as NSString).lastPathComponent) sha256:\(try Converter.sha256(ofModel: model))"))
        }
        try PNGImage.write(path: output, rgb: sheet, width: sheetW, height: sheetH, textChunks: chunks)
        if json {
            try printJSON(["path": output, "prompts": String(lines.count), "width": String(sheetW), "height": String(sheetH),
                           "seconds": String(format: "%.2f", Date().timeIntervalSince(start))])
        } else {
            print("wrote \(output) (\(sheetW)×\(sheetH), \(lines.count) prompts in \(rows) row(s), seed \(seed))")
        }
    }

    /// img2img's first scheduler step for `strength`; a strength outside (0, 1], or one that leaves
    /// no step, is bad input (exit 1).
    static func checkStrength(_ strength: Double, steps: Int) throws -> Int {
        do {
            return try PixArtPipeline.img2imgFirstStep(steps: steps, strength: strength)
        } catch {
            throw CheckFailed(description: "--strength: \(error)")
        }
    }
}
