/// What diffusers' tiled decode and tiled encode (`AutoencoderKL.tiled_decode`, `_tiled_encode`)
/// share: tiles start every `stride` input cells along each axis (`range(0, n, stride)`), each
/// covering up to `size` cells (smaller at the bottom and right edges); each tile is run by itself,
/// blended into the tile above it and then into the one to its left over `blend` output cells
/// (`blend_v`, `blend_h`), cropped to its first `keep` rows and columns and concatenated.
/// `VAEDecoder.decodeTiled` runs it on latents (output pixels), `VAEEncoder` on pixels (output
/// moments). Only the previous row of tiles is kept.
enum VAETiles {
    /// One output tile, [channels, h, w].
    struct Tile { var data: [Float]; let h: Int; let w: Int }

    /// The grid of one image: input size, tile size and stride (input cells), blend and keep
    /// (output cells).
    struct Grid {
        let height: Int, width: Int, size: Int, stride: Int, blend: Int, keep: Int

        var rowStarts: [Int] { Array(Swift.stride(from: 0, to: height, by: stride)) }
        var colStarts: [Int] { Array(Swift.stride(from: 0, to: width, by: stride)) }

        /// The output height and width diffusers' concatenation gives, where `outputLength(n)` is the
        /// output length of a tile of n input cells (nil: such a tile cannot be run).
        func outputSize(_ outputLength: (Int) -> Int?) -> (height: Int, width: Int)? {
            guard stride > 0, keep > 0 else { return nil }
            func total(_ starts: [Int], _ n: Int) -> Int? {
                var sum = 0
                for s in starts {
                    guard let length = outputLength(min(size, n - s)) else { return nil }
                    sum += min(keep, length)
                }
                return sum
            }
            guard let h = total(rowStarts, height), let w = total(colStarts, width) else { return nil }
            return (h, w)
        }
    }

    /// The tiled result [channels, outHeight, outWidth], or nil when the crops would not add up to
    /// exactly that size (the caller then runs the image whole). `run(input)` maps the input tile
    /// [inChannels, h, w] at (y, x) to its output tile.
    static func assemble(
        _ input: [Float], inChannels: Int, grid g: Grid, channels: Int, outHeight: Int, outWidth: Int,
        outputLength: (Int) -> Int?, run: (_ tile: [Float], _ h: Int, _ w: Int) -> Tile
    ) -> [Float]? {
        guard let size = g.outputSize(outputLength), size == (outHeight, outWidth) else { return nil }
        let colStarts = g.colStarts
        var out = [Float](repeating: 0, count: channels * outHeight * outWidth)
        var above: [Tile] = []
        var y0 = 0
        for i in g.rowStarts {
            let th = min(g.size, g.height - i)
            var row: [Tile] = []
            var x0 = 0
            for (jIndex, j) in colStarts.enumerated() {
                let tw = min(g.size, g.width - j)
                var piece = [Float](repeating: 0, count: inChannels * th * tw)
                for c in 0..<inChannels {
                    for y in 0..<th {
                        let src = (c * g.height + i + y) * g.width + j, dst = (c * th + y) * tw
                        for x in 0..<tw { piece[dst + x] = input[src + x] }
                    }
                }
                var tile = run(piece, th, tw)
                if !above.isEmpty { blendVertical(above[jIndex], into: &tile, channels: channels, extent: g.blend) }
                if let left = row.last { blendHorizontal(left, into: &tile, channels: channels, extent: g.blend) }
                let kh = min(g.keep, tile.h), kw = min(g.keep, tile.w)
                for c in 0..<channels {
                    for y in 0..<kh {
                        let src = (c * tile.h + y) * tile.w, dst = (c * outHeight + y0 + y) * outWidth + x0
                        for x in 0..<kw { out[dst + x] = tile.data[src + x] }
                    }
                }
                x0 += kw
                row.append(tile)
            }
            y0 += min(g.keep, row.first?.h ?? 0)
            above = row
        }
        return out
    }

    /// diffusers `blend_v`: rows y < e of b become a[h_a − e + y] · (1 − y/e) + b[y] · (y/e),
    /// e = min(h_a, h_b, extent); the tiles have the same width. The weights are Python floats
    /// (doubles) that torch applies to f32 tensors as f32; each product and the sum are f32.
    static func blendVertical(_ a: Tile, into b: inout Tile, channels: Int, extent: Int) {
        let e = min(a.h, b.h, extent)
        for y in 0..<e {
            let wa = Float(1 - Double(y) / Double(e)), wb = Float(Double(y) / Double(e))
            for c in 0..<channels {
                let ra = (c * a.h + a.h - e + y) * a.w, rb = (c * b.h + y) * b.w
                for x in 0..<b.w { b.data[rb + x] = a.data[ra + x] * wa + b.data[rb + x] * wb }
            }
        }
    }

    /// diffusers `blend_h`: columns x < e of b become a[w_a − e + x] · (1 − x/e) + b[x] · (x/e),
    /// e = min(w_a, w_b, extent); the tiles have the same height.
    static func blendHorizontal(_ a: Tile, into b: inout Tile, channels: Int, extent: Int) {
        let e = min(a.w, b.w, extent)
        for x in 0..<e {
            let wa = Float(1 - Double(x) / Double(e)), wb = Float(Double(x) / Double(e))
            for c in 0..<channels {
                for y in 0..<b.h {
                    let ia = (c * a.h + y) * a.w + a.w - e + x, ib = (c * b.h + y) * b.w + x
                    b.data[ib] = a.data[ia] * wa + b.data[ib] * wb
                }
            }
        }
    }
}
