// libFuzzer harness: safetensors header + file reader (PixconvReaders `SafetensorsHeader.parse`,
// `SafetensorsFile`). Run through scripts/fuzz; see formats/fuzzing.md.
import FuzzSupport
import PixconvCore
import PixconvReaders

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = fuzzInput(data, size)
    // The parser on libFuzzer's heap copy: ASan sees any read past the input.
    guard let header = try? SafetensorsHeader.parse(input, path: "fuzz") else { return 0 }
    var sink: UInt8 = 0
    for e in header.entries {
        // Every range the parser accepts must lie in the input and match its dtype × shape.
        precondition(e.range.lowerBound >= header.dataStart && e.range.upperBound <= input.count, "range outside input")
        precondition(e.info.dtype.byteCount(elements: elementCount(e.info.shape) ?? -1) == e.range.count, "size mismatch")
        sink ^= fuzzTouch(UnsafeRawBufferPointer(rebasing: input[e.range]))
    }
    // The same bytes through the mapped-file reader.
    let path = writeScratchFile(input, tag: "st")
    if let file = try? SafetensorsFile(path: path) {
        for t in file.tensors {
            if let d = try? file.data(for: t.name) { sink ^= fuzzTouch(d.bytes) }
        }
    }
    return sink == 0x5A ? 0 : 0
}

runFuzzer(fuzzSafetensors)
