import PixconvCore

/// One chunk of a PNG stream: its 4-letter type, the offset of its length field, and the range of its data.
struct PNGChunk: Equatable {
    let type: String
    let offset: Int
    let data: Range<Int>
}

/// The PNG chunk layer (PNG spec §5): length (u32 BE) · type · data · CRC-32 over type and data.
///
/// libpng's simplified API can neither write nor return text chunks, so pixconv splits the stream
/// itself: `parse` checks the structure of untrusted bytes (signature, bounds, CRC of every chunk,
/// IHDR first, IEND present) before libpng sees them, and text chunks are built and read here.
enum PNGChunks {
    static let signature: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]
    /// Longest chunk data the spec allows (2³¹ − 1).
    static let maxLength = Int(Int32.max)

    /// Splits `bytes` into chunks up to and including IEND (bytes after IEND are ignored, as libpng does).
    static func parse(_ bytes: [UInt8], file: String) throws(ImageError) -> [PNGChunk] {
        guard bytes.count >= signature.count else {
            if bytes.elementsEqual(signature.prefix(bytes.count)) && !bytes.isEmpty {
                throw .truncated(file: file, offset: bytes.count)
            }
            throw .notPNG(file: file)
        }
        guard bytes[0..<8].elementsEqual(signature) else { throw .notPNG(file: file) }
        var chunks: [PNGChunk] = []
        var offset = 8
        while true {
            guard bytes.count - offset >= 12 else { throw .truncated(file: file, offset: bytes.count) }
            let length = Int(readBE(bytes, offset))
            guard length <= maxLength else {
                throw .badChunk(file: file, offset: offset, reason: "length \(length) exceeds 2^31-1")
            }
            let typeBytes = bytes[offset + 4..<offset + 8]
            guard typeBytes.allSatisfy({ (65...90).contains($0) || (97...122).contains($0) }) else {
                throw .badChunk(file: file, offset: offset, reason: "chunk type is not four ascii letters")
            }
            let type = String(decoding: typeBytes, as: UTF8.self)
            guard length <= bytes.count - offset - 12 else { throw .truncated(file: file, offset: bytes.count) }
            let data = offset + 8..<offset + 8 + length
            let stored = readBE(bytes, data.upperBound)
            let computed = bytes.withUnsafeBytes { crc32(UnsafeRawBufferPointer(rebasing: $0[offset + 4..<data.upperBound])) }
            guard stored == computed else {
                throw .badCRC(file: file, chunk: type, offset: offset, stored: stored, computed: computed)
            }
            if chunks.isEmpty && type != "IHDR" {
                throw .badChunk(file: file, offset: offset, reason: "first chunk is \(type), not IHDR")
            }
            chunks.append(PNGChunk(type: type, offset: offset, data: data))
            offset = data.upperBound + 4
            if type == "IEND" { return chunks }
        }
    }

    /// length · type · data · crc
    static func chunk(type: String, data: [UInt8]) -> [UInt8] {
        precondition(type.utf8.count == 4 && data.count <= maxLength)
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 12)
        appendBE(&out, UInt32(data.count))
        out.append(contentsOf: type.utf8)
        out.append(contentsOf: data)
        let crc = out.withUnsafeBytes { crc32(UnsafeRawBufferPointer(rebasing: $0[4...])) }
        appendBE(&out, crc)
        return out
    }

    /// A tEXt chunk when the value is plain ASCII, otherwise an uncompressed iTXt chunk (UTF-8, no language tag).
    static func textChunk(key: String, value: String) throws(ImageError) -> [UInt8] {
        let k = Array(key.utf8)
        guard (1...79).contains(k.count), k.allSatisfy({ (32...126).contains($0) }), k.first != 32, k.last != 32,
              !key.contains("  ") else { throw .badTextKey(key) }
        let v = Array(value.utf8)
        guard !v.contains(0) else { throw .badTextValue(key: key, reason: "contains a NUL character") }
        if v.allSatisfy({ $0 < 128 }) {
            return chunk(type: "tEXt", data: k + [0] + v)
        }
        // keyword 0 · compression flag 0 · method 0 · language tag "" 0 · translated keyword "" 0 · text
        return chunk(type: "iTXt", data: k + [0, 0, 0, 0, 0] + v)
    }

    /// `png` with `extra` (whole chunks) inserted just before its IEND chunk.
    static func insertBeforeIEND(_ png: [UInt8], extra: [UInt8], file: String) throws(ImageError) -> [UInt8] {
        let chunks = try parse(png, file: file)
        guard let iend = chunks.last, iend.type == "IEND" else { throw .truncated(file: file, offset: png.count) }
        return Array(png[..<iend.offset]) + extra + Array(png[iend.offset...])
    }

    /// Key/value pairs of the tEXt chunks and uncompressed iTXt chunks, in file order.
    /// zTXt and compressed iTXt chunks are skipped (pixconv never writes them).
    static func text(in bytes: [UInt8], chunks: [PNGChunk]) -> [(key: String, value: String)] {
        var out: [(key: String, value: String)] = []
        for chunk in chunks where chunk.type == "tEXt" || chunk.type == "iTXt" {
            let data = bytes[chunk.data]
            guard let nul = data.firstIndex(of: 0) else { continue }
            let key = latin1(data[data.startIndex..<nul])
            if chunk.type == "tEXt" {
                out.append((key, latin1(data[(nul + 1)...])))
                continue
            }
            // iTXt: compression flag, method, language tag 0, translated keyword 0, text.
            guard data.endIndex - nul >= 3, data[nul + 1] == 0 else { continue }
            let rest = data[(nul + 3)...]
            guard let langEnd = rest.firstIndex(of: 0),
                  let transEnd = rest[(langEnd + 1)...].firstIndex(of: 0) else { continue }
            out.append((key, String(decoding: rest[(transEnd + 1)...], as: UTF8.self)))
        }
        return out
    }

    private static func latin1(_ bytes: ArraySlice<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(b)) }
        return String(s)
    }

    static func readBE(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
            | UInt32(bytes[offset + 3])
    }

    static func appendBE(_ out: inout [UInt8], _ v: UInt32) {
        out.append(contentsOf: [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)])
    }
}
