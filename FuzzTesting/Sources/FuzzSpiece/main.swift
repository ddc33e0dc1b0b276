// libFuzzer harness: the sentencepiece model reader and Unigram encoder (PixconvRuntime
// `SentencePieceModel(bytes:)`, `SentencePieceUnigram`, `T5Tokenizer`). See formats/fuzzing.md.
import FuzzSupport
import PixconvRuntime

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpiece(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = [UInt8](fuzzInput(data, size))
    guard let model = try? SentencePieceModel(bytes: bytes) else { return 0 }
    guard let unigram = try? SentencePieceUnigram(model: model) else { return 0 }
    let n = model.pieces.count
    for id in unigram.encode("A photo of a cat, 3 «ß» \u{3000}x  ") { precondition(id >= 0 && Int(id) < n, "id out of range") }
    _ = unigram.encode(bytes: Array(bytes.prefix(64)))
    if let tok = try? T5Tokenizer(spieceModel: bytes, extraIds: 3) {
        _ = tok.encode("a small red car", maxLength: 16)
    }
    return 0
}

runFuzzer(fuzzSpiece)
