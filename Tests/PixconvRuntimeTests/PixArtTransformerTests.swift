import Foundation
import XCTest

@testable import PixconvRuntime

final class PixArtTransformerTests: XCTestCase {
    private func ditForwardFixtures() throws -> DitSafetensors {
        try DitSafetensors(path: ditFixturePath("dit/forward.safetensors"))
    }

    private func ditModel(_ folder: String) throws -> PixArtTransformer {
        let config = try PixArtConfig.load(path: ditFixturePath("\(folder)/transformer/config.json"))
        let st = try DitSafetensors(path: ditFixturePath("\(folder)/transformer/diffusion_pytorch_model.safetensors"))
        return try PixArtTransformer(config: config, weights: Weights(st.file))
    }

    /// Deterministic pseudo-random values in [-1, 1) (test inputs only).
    private func ditNoise(_ count: Int, seed: UInt64) -> [Float] {
        var g = TorchGenerator(seed: seed)
        return (0..<count).map { _ in Float(g.random() & 0xFFFFFF) / Float(1 << 23) - 1 }
    }

    func testConfigDefaults() throws {
        let c512 = try PixArtConfig.load(path: ditFixturePath("tiny-pixart-512/transformer/config.json"))
        XCTAssertEqual(c512.innerDim, 24)
        XCTAssertEqual(c512.resolvedInterpolationScale, 1)
        XCTAssertFalse(c512.resolvedUseAdditionalConditions)
        XCTAssertEqual(c512.baseSize, 4)
        XCTAssertEqual(c512.captionChannels, 32)
        let c1024 = try PixArtConfig.load(path: ditFixturePath("tiny-pixart-1024ms/transformer/config.json"))
        XCTAssertEqual(c1024.resolvedInterpolationScale, 2)
        XCTAssertTrue(c1024.resolvedUseAdditionalConditions)
        let empty = try PixArtConfig.decode(json: Data("{}".utf8))
        XCTAssertEqual(empty.innerDim, 1152)
        XCTAssertNil(empty.captionChannels)
        XCTAssertEqual(empty.resolvedOutChannels, 8)
    }

    func testPositionEmbeddingMatchesDiffusers() throws {
        let st = try ditForwardFixtures()
        var checked = 0
        for info in st.tensors where info.name.hasPrefix("posembed_") {
            // posembed_{dim}_{h}x{w}_b{base}_s{scale}
            let parts = info.name.split(separator: "_")
            let dim = try XCTUnwrap(Int(parts[1]))
            let hw = parts[2].split(separator: "x").compactMap { Int($0) }
            let base = try XCTUnwrap(Int(parts[3].dropFirst()))
            let scale = try XCTUnwrap(Double(parts[4].dropFirst()))
            let ours = PixArtEmbeddings.positionEmbedding(dim: dim, height: hw[0], width: hw[1], baseSize: base,
                                                          interpolationScale: scale)
            let d = ditMaxDiff(ours, try st.floats(info.name))
            XCTAssertLessThanOrEqual(d.abs, 1e-6, "\(info.name): \(d.ulps) ulp")
            checked += 1
        }
        XCTAssertEqual(checked, 7)
    }

    func testTimestepSinusoidMatchesDiffusers() throws {
        let st = try ditForwardFixtures()
        let ours = PixArtEmbeddings.timestepSinusoid(try st.floats("temb_t"))
        let d = ditMaxDiff(ours, try st.floats("temb_256"))
        // float32 arguments up to 1024 rad: 1 ulp of exp(·) in torch vs libm moves sin/cos by ≲ 1e-4·ulp-scale
        XCTAssertLessThanOrEqual(d.abs, 2e-4, "max diff \(d.abs)")
        print("timestep sinusoid max diff \(d.abs)")
    }

    func testPatchEmbedGemmMatchesDirectConvolution() {
        let (b, c, hgt, wid, p, dim) = (2, 4, 6, 10, 2, 12)
        let x = ditNoise(b * c * hgt * wid, seed: 1)
        let w = ditNoise(dim * c * p * p, seed: 2)
        let bias = ditNoise(dim, seed: 3)
        let fast = PixArtEmbeddings.patchEmbed(x, batch: b, channels: c, height: hgt, width: wid, patch: p, weight: w, bias: bias, dim: dim)
        let ref = PixArtEmbeddings.patchEmbedReference(x, batch: b, channels: c, height: hgt, width: wid, patch: p,
                                                       weight: w, bias: bias, dim: dim)
        XCTAssertLessThanOrEqual(ditMaxDiff(fast, ref).abs, 1e-5)
        // unpatchify inverts patchify when the token layout is (p, p, C) per token
        let tokens = PixArtEmbeddings.patchify(x, batch: b, channels: c, height: hgt, width: wid, patch: p)
        var reordered = [Float](repeating: 0, count: tokens.count)  // (c, py, px) → (py, px, c)
        for t in 0..<(tokens.count / (c * p * p)) {
            for ch in 0..<c { for q in 0..<(p * p) { reordered[t * c * p * p + q * c + ch] = tokens[t * c * p * p + ch * p * p + q] } }
        }
        XCTAssertEqual(PixArtEmbeddings.unpatchify(reordered, batch: b, height: hgt / p, width: wid / p, patch: p, channels: c), x)
    }

    func testAttentionGemmMatchesReference() {
        let (b, nq, nk, heads, hd) = (2, 37, 11, 3, 8)
        let q = ditNoise(b * nq * heads * hd, seed: 4).map { $0 * 3 }
        let k = ditNoise(b * nk * heads * hd, seed: 5).map { $0 * 3 }
        let v = ditNoise(b * nk * heads * hd, seed: 6)
        var bias = [Float](repeating: 0, count: b * nk)
        for j in 6..<nk { bias[j] = -10000 }
        for j in 9..<nk { bias[nk + j] = -10000 }
        for keyBias in [nil, bias] {
            let fast = Attention.attention(q: q, k: k, v: v, batch: b, queries: nq, keys: nk, heads: heads, headDim: hd, keyBias: keyBias)
            let ref = Attention.attentionReference(q: q, k: k, v: v, batch: b, queries: nq, keys: nk, heads: heads, headDim: hd,
                                                   keyBias: keyBias)
            XCTAssertLessThanOrEqual(ditMaxDiff(fast, ref).abs, 1e-5)
        }
        // blocking: more queries than one query block (128), more keys than one key block (512)
        let big = 128 * 2 + 5, keys = 512 * 2 + 3
        let q2 = ditNoise(big * 8, seed: 7).map { $0 * 4 }, k2 = ditNoise(keys * 8, seed: 8), v2 = ditNoise(keys * 8, seed: 9)
        let f2 = Attention.attention(q: q2, k: k2, v: v2, batch: 1, queries: big, keys: keys, heads: 1, headDim: 8, keyBias: nil)
        let r2 = Attention.attentionReference(q: q2, k: k2, v: v2, batch: 1, queries: big, keys: keys, heads: 1, headDim: 8, keyBias: nil)
        XCTAssertLessThanOrEqual(ditMaxDiff(f2, r2).abs, 1e-5)
    }

    private struct DitCase {
        let key: String, folder: String, height: Int, width: Int
    }

    private let ditCases = [
        DitCase(key: "512", folder: "tiny-pixart-512", height: 8, width: 8),
        DitCase(key: "512", folder: "tiny-pixart-512", height: 8, width: 12),
        DitCase(key: "1024ms", folder: "tiny-pixart-1024ms", height: 16, width: 16),
        DitCase(key: "1024ms", folder: "tiny-pixart-1024ms", height: 16, width: 24),
        DitCase(key: "512", folder: "tiny-pixart-512", height: 8, width: 8),  // again: grid change on one model
    ]

    func testForwardMatchesDiffusers() throws {
        let st = try ditForwardFixtures()
        var report: [String] = []
        var models: [String: PixArtTransformer] = [:]
        for c in ditCases {
            let model = try models[c.folder] ?? ditModel(c.folder)
            models[c.folder] = model
            let pre = "\(c.key)_\(c.height)x\(c.width)_"
            let mask = try st.floats(pre + "mask")
            let textLength = mask.count / 2
            let hasConditions = st.info(for: pre + "resolution") != nil
            let out = try model.forward(
                latents: try st.floats(pre + "latents"), batch: 2, height: c.height, width: c.width,
                timesteps: try st.floats(pre + "timesteps"), encoderHiddenStates: try st.floats(pre + "encoder"),
                encoderMask: mask, textLength: textLength,
                resolution: hasConditions ? try st.floats(pre + "resolution") : nil,
                aspectRatio: hasConditions ? try st.floats(pre + "aspect_ratio") : nil)
            let expected = try st.floats(pre + "output")
            XCTAssertEqual(try st.shape(pre + "output"), [2, model.config.resolvedOutChannels, c.height, c.width])
            let d = ditMaxDiff(out, expected)
            XCTAssertLessThanOrEqual(d.abs, 1e-4, pre)
            report.append("\(pre)output \(d.abs)")

            // intermediates: conditioning and the first block
            let (cond, t6) = try model.condition(timesteps: try st.floats(pre + "timesteps"),
                                                 resolution: hasConditions ? try st.floats(pre + "resolution") : nil,
                                                 aspectRatio: hasConditions ? try st.floats(pre + "aspect_ratio") : nil)
            XCTAssertLessThanOrEqual(ditMaxDiff(cond, try st.floats(pre + "cond")).abs, 1e-4, pre + "cond")
            XCTAssertLessThanOrEqual(ditMaxDiff(t6, try st.floats(pre + "t6")).abs, 1e-4, pre + "t6")
            let dim = model.config.innerDim
            let block = try PixArtBlock(model.weights.scope("transformer_blocks.0"), dim: dim, crossDim: dim)
            let patch = try st.floats(pre + "patch")
            let tokens = patch.count / (2 * dim)
            let kv = block.captionKeysValues(try st.floats(pre + "caption"), rows: 2 * textLength)
            let t6Block = try st.floats(pre + "t6")
            // the default (one chunk here), one batch element per chunk, parts of one, 5-row parts
            for limit in [PixArtBlock.chunkRows, tokens, max(1, tokens / 3), 5] {
                var x = patch
                x.withUnsafeMutableBufferPointer { xp in
                    block.forward(xp.baseAddress!, batch: 2, tokens: tokens, t6: t6Block, captionKV: kv,
                                  captionLength: textLength, captionBias: mask.map { (1 - $0) * -10000 },
                                  heads: model.config.numAttentionHeads, headDim: model.config.attentionHeadDim, eps: 1e-6,
                                  workspace: Workspace(), chunkRows: limit)
                }
                let db = ditMaxDiff(x, try st.floats(pre + "block0"))
                XCTAssertLessThanOrEqual(db.abs, 1e-4, pre + "block0, chunks of at most \(limit) rows")
                if limit == PixArtBlock.chunkRows { report.append("\(pre)block0 \(db.abs)") }
            }
        }
        print("transformer max abs diff: " + report.joined(separator: ", "))
    }

    /// The whole `PixArtAlphaPipeline` denoising loop (CFG batch [uncond, cond], guidance on all 8
    /// channels, first 4 kept) from given embeddings, against diffusers' `output_type="latent"`.
    func testDenoisingLoopMatchesPipeline() throws {
        let st = try DitSafetensors(path: ditFixturePath("dit/loop.safetensors"))
        let config = try SchedulerConfig.load(path: ditFixturePath("dit/scheduler_config.json"))
        var report: [String] = []
        for (name, folder, scheduler) in [("512_dpm", "tiny-pixart-512", "dpm++2m"), ("512_ddim", "tiny-pixart-512", "ddim"),
                                          ("512_euler", "tiny-pixart-512", "euler"),
                                          ("1024ms_dpm", "tiny-pixart-1024ms", "dpm++2m")] {
            let model = try ditModel(folder)
            let params = try st.floats(name + "_params")  // seed, steps, guidance, height px, width px
            let steps = Int(params[1]), guidance = params[2]
            let (hPx, wPx) = (Int(params[3]), Int(params[4]))
            let (h, w) = (hPx / 2, wPx / 2)  // tiny VAE: scale factor 2
            let cond = try st.floats(name + "_prompt_embeds"), uncond = try st.floats(name + "_negative_embeds")
            let mask = try st.floats(name + "_negative_mask") + (try st.floats(name + "_prompt_mask"))
            let textLength = mask.count / 2
            var s = try makeScheduler(name: scheduler, config: config, steps: steps)
            var g = TorchGenerator(seed: UInt64(params[0]))
            let n = 4 * h * w
            var x = g.randn(count: n).map { $0 * s.initNoiseSigma }
            let conditions = model.config.resolvedUseAdditionalConditions
            for (i, t) in s.timesteps.enumerated() {
                let xin = try s.scaleModelInput(x, stepIndex: i)
                let out = try model.forward(
                    latents: xin + xin, batch: 2, height: h, width: w, timesteps: [t, t],
                    encoderHiddenStates: uncond + cond, encoderMask: mask, textLength: textLength,
                    resolution: conditions ? [Float(hPx), Float(wPx), Float(hPx), Float(wPx)] : nil,
                    aspectRatio: conditions ? [Float(Double(hPx) / Double(wPx)), Float(Double(hPx) / Double(wPx))] : nil)
                let half = out.count / 2  // (8, h, w) per sample; ε = channels 0..<4
                let eps = (0..<n).map { j in out[j] + guidance * (out[half + j] - out[j]) }
                x = try s.step(modelOutput: eps, stepIndex: i, sample: x)
            }
            let expected = try st.floats(name + "_latents")
            let d = ditMaxDiff(x, expected)
            let scale = expected.map { abs($0) }.max() ?? 1
            // DDIM divides by √ᾱ_t (1/157 at t = 999), which magnifies float32 rounding before clipping
            XCTAssertLessThanOrEqual(d.abs / max(scale, 1), 2e-4, "\(name): max abs diff \(d.abs) of \(scale)")
            report.append("\(name) \(d.abs) (max |x| \(scale))")
        }
        print("denoising loops: " + report.joined(separator: ", "))
    }

    /// The block's row chunks cover every row of the (B·N, D) stream once, in order, never
    /// straddle a batch element partially, and hold at most the limit (or one whole element).
    func testBlockChunksCoverTheStream() {
        for (batch, n, limit) in [(2, 1024, 4096), (2, 4096, 4096), (2, 16384, 4096), (1, 7, 3), (3, 5, 11), (2, 10, 1), (2, 9, 4)] {
            let chunks = PixArtBlock.chunks(batch: batch, tokens: n, limit: limit)
            var next = 0
            for c in chunks {
                XCTAssertEqual(c.firstRow(tokens: n), next, "\(batch)×\(n) limit \(limit)")
                XCTAssertTrue(c.batches == 1 || (c.token == 0 && c.queries == n))
                XCTAssertLessThanOrEqual(c.token + c.queries, n)
                XCTAssertLessThanOrEqual(c.rows, max(limit, n))
                next += c.rows
            }
            XCTAssertEqual(next, batch * n, "\(batch)×\(n) limit \(limit)")
        }
        XCTAssertEqual(PixArtBlock.chunks(batch: 2, tokens: 1024).count, 1)  // a 512² guided step: one chunk
        XCTAssertEqual(PixArtBlock.chunks(batch: 2, tokens: 16384).map(\.rows), [4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096])
    }

    func testMissingConditionsAndBadShapesThrow() throws {
        let model = try ditModel("tiny-pixart-1024ms")
        let latents = [Float](repeating: 0, count: 2 * 4 * 16 * 16)
        let enc = [Float](repeating: 0, count: 2 * 3 * 32)
        let mask = [Float](repeating: 1, count: 2 * 3)
        XCTAssertThrowsError(try model.forward(latents: latents, batch: 2, height: 16, width: 16, timesteps: [1, 2],
                                               encoderHiddenStates: enc, encoderMask: mask, textLength: 3,
                                               resolution: nil, aspectRatio: nil))
        XCTAssertThrowsError(try model.forward(latents: latents, batch: 2, height: 15, width: 16, timesteps: [1, 2],
                                               encoderHiddenStates: enc, encoderMask: mask, textLength: 3,
                                               resolution: [1, 1, 1, 1], aspectRatio: [1, 1]))
        XCTAssertThrowsError(try model.forward(latents: latents, batch: 2, height: 16, width: 16, timesteps: [1],
                                               encoderHiddenStates: enc, encoderMask: mask, textLength: 3,
                                               resolution: [1, 1, 1, 1], aspectRatio: [1, 1]))
        var bad = model.config
        bad.numAttentionHeads = 4  // weights are for 3 heads × 8
        let st = try DitSafetensors(path: ditFixturePath("tiny-pixart-1024ms/transformer/diffusion_pytorch_model.safetensors"))
        XCTAssertThrowsError(try PixArtTransformer(config: bad, weights: Weights(st.file)))
    }
}
