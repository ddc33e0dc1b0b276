/// Little-endian integer bytes for hand-built test inputs (zip, pickle, GGUF, safetensors), written
/// from the format specifications rather than through pixconv's own readers or writers.
public enum TestLE {
    /// The low `n` bytes of `v`, least significant first.
    public static func bytes(_ v: UInt64, _ n: Int) -> [UInt8] {
        (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) }
    }

    /// `v` truncated to 16 bits (so `~24` gives the one's complement used by stored deflate blocks).
    public static func u16(_ v: Int) -> [UInt8] { bytes(UInt64(UInt16(truncatingIfNeeded: v)), 2) }

    /// `v` truncated to 32 bits.
    public static func u32(_ v: Int) -> [UInt8] { bytes(UInt64(UInt32(truncatingIfNeeded: v)), 4) }

    /// `v` as 8 bytes.
    public static func u64(_ v: UInt64) -> [UInt8] { bytes(v, 8) }
}
