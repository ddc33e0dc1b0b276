/// What to generate. Defaults follow diffusers' `PixArtAlphaPipeline.__call__`.
public struct GenerationRequest: Sendable {
    public var prompt: String
    public var negativePrompt: String = ""
    public var seed: UInt64 = 0
    public var steps: Int = 20
    public var guidanceScale: Float = 4.5
    /// Pixel size; nil → the model's native size (`sample_size · vae_scale_factor`).
    public var height: Int?
    public var width: Int?
    public var scheduler: String = "dpm++2m"
    /// diffusers' `timesteps=` (custom, descending): the schedule instead of `steps`, whose count it sets.
    public var timesteps: [Int]? = nil
    /// Images in one batched call, with seeds `seed`, `seed + 1`, … (a list of CPU generators).
    public var count: Int = 1
    /// T5 tokens of the prompt (diffusers' `max_sequence_length`); nil → the model family's (α 120, Σ 300).
    public var maxSequenceLength: Int? = nil
    /// Snap the size to the nearest trained aspect-ratio bin, then resize back (diffusers' default).
    public var useResolutionBinning: Bool = false
    /// img2img: start from this image (its size is the output size) instead of pure noise.
    public var initImage: InitImage? = nil
    /// img2img: how much of the schedule runs, in (0, 1] (diffusers' `strength`, default 0.8).
    public var strength: Double = 0.8
    /// Decode, and for img2img encode, with diffusers' VAE tiling (`enable_tiling()`): true, false,
    /// or nil to tile each of the two only when its untiled run would need more than `memoryBudget`
    /// bytes (`PixArtPipeline.tilesVAE`).
    public var vaeTiling: Bool? = nil
    /// Bytes the VAE decode (or encode) may take; nil → three quarters of the memory available when
    /// it starts.
    public var memoryBudget: Int? = nil
    /// diffusers' `clean_caption` (its default, true): prompt and negative prompt go through
    /// `pixArtCleanCaption`; false: Python `lower().strip()` only (formats/caption-cleaning.md).
    public var cleanCaption: Bool = true

    public init(prompt: String) { self.prompt = prompt }
}

/// One generated image: HWC RGB floats in [0, 1] (diffusers' `output_type="np"`).
public struct GeneratedImage: Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [Float]
    public var seed: UInt64

    /// 8-bit RGB as diffusers' PIL output: `(x·255).round()` half to even.
    public var rgb8: [UInt8] { pixels.map { UInt8(($0 * 255).rounded(.toNearestOrEven)) } }
}
