import Foundation

/// The embedding pieces of the PixArt transformer: patchify (conv as im2col + GEMM), 2-D sin-cos
/// position embedding, the timestep sinusoid, and unpatchify. Each has the reference formula named.
public enum PixArtEmbeddings {
    /// 2-D sin-cos position embedding, (h·w, dim) row-major, token k = i·w + j
    /// (D: `embeddings.py::get_2d_sincos_pos_embed`, `get_2d_sincos_pos_embed_from_grid`,
    /// `get_1d_sincos_pos_embed_from_grid`).
    ///
    /// Positions are float32 (`arange(h) / (h / base) / scale`, each a float32 division, as torch does
    /// with Python scalars); frequencies `1 / 10000^(d / (dim/4))` and sin/cos are float64, then rounded.
    /// The first dim/2 values encode the column (x, from w), the last dim/2 the row (y, from h).
    public static func positionEmbedding(dim: Int, height h: Int, width w: Int, baseSize: Int, interpolationScale: Double) -> [Float] {
        precondition(dim % 4 == 0 && h > 0 && w > 0 && baseSize > 0)
        let quarter = dim / 4
        let omega = (0..<quarter).map { 1.0 / Foundation.pow(10000.0, Double($0) / Double(quarter)) }
        func positions(_ n: Int) -> [Double] {
            let div = Float(Double(n) / Double(baseSize))
            let scale = Float(interpolationScale)
            return (0..<n).map { Double(Float($0) / div / scale) }
        }
        let ys = positions(h), xs = positions(w)
        // per-axis tables: [sin(p·ω), cos(p·ω)] of width dim/2
        func table(_ ps: [Double]) -> [Float] {
            var t = [Float](repeating: 0, count: ps.count * 2 * quarter)
            for (n, p) in ps.enumerated() {
                for d in 0..<quarter {
                    let a = p * omega[d]
                    t[n * 2 * quarter + d] = Float(Foundation.sin(a))
                    t[n * 2 * quarter + quarter + d] = Float(Foundation.cos(a))
                }
            }
            return t
        }
        let tx = table(xs), ty = table(ys)
        let half = dim / 2
        var out = [Float](repeating: 0, count: h * w * dim)
        out.withUnsafeMutableBufferPointer { o in
            for i in 0..<h {
                for j in 0..<w {
                    let base = (i * w + j) * dim
                    for d in 0..<half {
                        o[base + d] = tx[j * half + d]
                        o[base + half + d] = ty[i * half + d]
                    }
                }
            }
        }
        return out
    }

    /// Timestep sinusoid, (count, channels): `[cos(t·f_k), sin(t·f_k)]`, f_k = exp(−ln(10000)·k / half)
    /// in float32 (D: `embeddings.py::get_timestep_embedding` with flip_sin_to_cos=True, shift 0).
    public static func timestepSinusoid(_ t: [Float], channels: Int = 256) -> [Float] {
        let half = channels / 2
        let negLog = Float(-Foundation.log(10000.0))
        let freqs = (0..<half).map { k in Foundation.exp(negLog * Float(k) / Float(half)) }
        var out = [Float](repeating: 0, count: t.count * channels)
        for (n, tv) in t.enumerated() {
            for k in 0..<half {
                let arg = tv * freqs[k]
                out[n * channels + k] = Foundation.cos(arg)
                out[n * channels + half + k] = Foundation.sin(arg)
            }
        }
        return out
    }

    /// im2col for a stride-p, kernel-p convolution: (B, C, H, W) → (B·h·w, C·p·p), token-major
    /// (row b·h·w + i·w + j), columns ordered (c, py, px) like a conv weight (out, c, py, px).
    public static func patchify(_ x: [Float], batch: Int, channels: Int, height: Int, width: Int, patch p: Int) -> [Float] {
        let h = height / p, w = width / p
        let cols = channels * p * p
        var out = [Float](repeating: 0, count: batch * h * w * cols)
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for b in 0..<batch {
                    for i in 0..<h {
                        for j in 0..<w {
                            let row = ((b * h + i) * w + j) * cols
                            for c in 0..<channels {
                                let plane = (b * channels + c) * height * width
                                for py in 0..<p {
                                    for px in 0..<p {
                                        dst[row + (c * p + py) * p + px] = src[plane + (i * p + py) * width + j * p + px]
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Patch embedding: Conv2d(C→D, kernel p, stride p, bias) then flatten/transpose ⇒ (B, h·w, D)
    /// (D: `embeddings.py::PatchEmbed.proj`), as im2col + one GEMM.
    public static func patchEmbed(_ x: [Float], batch: Int, channels: Int, height: Int, width: Int, patch p: Int,
                                  weight: [Float], bias: [Float], dim: Int) -> [Float] {
        let cols = patchify(x, batch: batch, channels: channels, height: height, width: width, patch: p)
        let rows = batch * (height / p) * (width / p)
        return Kernels.linear(cols, rows: rows, inFeatures: channels * p * p, weight: weight, outFeatures: dim, bias: bias)
    }

    /// Plain direct convolution with the same result as `patchEmbed` (the reference for tests).
    public static func patchEmbedReference(_ x: [Float], batch: Int, channels: Int, height: Int, width: Int, patch p: Int,
                                           weight: [Float], bias: [Float], dim: Int) -> [Float] {
        let h = height / p, w = width / p
        var out = [Float](repeating: 0, count: batch * h * w * dim)
        for b in 0..<batch {
            for i in 0..<h {
                for j in 0..<w {
                    for o in 0..<dim {
                        var acc: Double = Double(bias[o])
                        for c in 0..<channels {
                            for py in 0..<p {
                                for px in 0..<p {
                                    let xv = x[((b * channels + c) * height + i * p + py) * width + j * p + px]
                                    acc += Double(xv) * Double(weight[((o * channels + c) * p + py) * p + px])
                                }
                            }
                        }
                        out[((b * h + i) * w + j) * dim + o] = Float(acc)
                    }
                }
            }
        }
        return out
    }

    /// Unpatchify: (B, h·w, p·p·C) → (B, C, h·p, w·p): pixel (i·p + py, j·p + px) of channel c is
    /// `tokens[b, i·w + j, (py·p + px)·C + c]` (D: `einsum("nhwpqc->nchpwq")`).
    public static func unpatchify(_ t: [Float], batch: Int, height h: Int, width w: Int, patch p: Int, channels: Int) -> [Float] {
        let H = h * p, W = w * p
        var out = [Float](repeating: 0, count: batch * channels * H * W)
        t.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for b in 0..<batch {
                    for i in 0..<h {
                        for j in 0..<w {
                            let token = ((b * h + i) * w + j) * p * p * channels
                            for py in 0..<p {
                                for px in 0..<p {
                                    for c in 0..<channels {
                                        dst[((b * channels + c) * H + i * p + py) * W + j * p + px] =
                                            src[token + (py * p + px) * channels + c]
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
