import CZlib

/// CRC-32 (IEEE 802.3, as zlib and zip compute it) of `bytes`, continuing from `crc`.
public func crc32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
    guard var base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return crc }
    var remaining = bytes.count
    var value = UInt(crc)
    while remaining > 0 {
        let chunk = min(remaining, 1 << 30)
        value = CZlib.crc32(value, base, UInt32(chunk))
        base += chunk
        remaining -= chunk
    }
    return UInt32(truncatingIfNeeded: value)
}

public func crc32(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBytes { crc32($0) }
}
