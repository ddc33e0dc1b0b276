import CZlib

/// Raw-deflate decompression (zip method 8) through zlib, into a buffer of exactly the declared size.
enum ZipInflater {
    /// Inflates `input` into `output`. The stream must end exactly when `output` is full and
    /// consume all of `input`; anything else means the declared size lies or the data is corrupt.
    static func inflate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                        name: String) throws(ZipError) {
        var stream = z_stream()
        guard pixconv_inflateInit2(&stream, -15) == Z_OK else { throw .inflate(name: name, reason: "zlib init failed") }
        defer { inflateEnd(&stream) }
        var inUsed = 0, outUsed = 0
        let inBase = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: UInt8.self)) }
        let outBase = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        var scratch: UInt8 = 0
        while true {
            let inChunk = min(input.count - inUsed, Int(UInt32.max))
            let outChunk = min(output.count - outUsed, Int(UInt32.max))
            let result: Int32 = withUnsafeMutablePointer(to: &scratch) { empty in
                stream.next_in = inBase.map { $0 + inUsed } ?? empty
                stream.avail_in = UInt32(inChunk)
                stream.next_out = outBase.map { $0 + outUsed } ?? empty
                stream.avail_out = UInt32(outChunk)
                let rc = CZlib.inflate(&stream, Z_NO_FLUSH)
                inUsed += inChunk - Int(stream.avail_in)
                outUsed += outChunk - Int(stream.avail_out)
                stream.next_in = nil
                stream.next_out = nil
                return rc
            }
            switch result {
            case Z_STREAM_END:
                guard outUsed == output.count else {
                    throw .inflate(name: name, reason: "inflates to \(outUsed) bytes, \(output.count) declared")
                }
                guard inUsed == input.count else {
                    throw .inflate(name: name, reason: "\(input.count - inUsed) compressed bytes after the stream end")
                }
                return
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                if outUsed == output.count {
                    throw .inflate(name: name, reason: "inflates to more than the declared \(output.count) bytes")
                }
                throw .inflate(name: name, reason: "compressed stream is truncated")
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "error \(result)"
                throw .inflate(name: name, reason: message)
            }
        }
    }
}
