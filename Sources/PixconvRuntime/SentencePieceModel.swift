/// The parts of a SentencePiece `ModelProto` (S: `sentencepiece_model.proto`) that encoding needs.
///
/// Parsed with our own proto2 reader; unknown fields are skipped, a field with an unexpected wire
/// type is skipped like an unknown one (as protobuf does), hostile bytes throw `SentencePieceError`.
public struct SentencePieceModel: Sendable {
    /// `ModelProto.SentencePiece.Type`.
    public enum PieceType: Int32, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public struct Piece: Sendable, Equatable {
        public var piece: String
        public var score: Float
        public var type: PieceType
    }

    /// `NormalizerSpec` (field 3), proto defaults applied.
    public struct NormalizerSpec: Sendable {
        public var name: String = ""
        public var precompiledCharsmap: [UInt8] = []
        public var addDummyPrefix = true
        public var removeExtraWhitespaces = true
        public var escapeWhitespaces = true
    }

    public var pieces: [Piece] = []
    /// `TrainerSpec.model_type` (UNIGRAM = 1, the proto default).
    public var modelType: Int32 = 1
    /// Ids from `TrainerSpec` (proto defaults unk 0, bos 1, eos 2, pad -1). Encoding takes the unknown
    /// id from the piece of type UNKNOWN, as sentencepiece does; these are informational.
    public var trainerUnkId: Int32 = 0
    public var trainerBosId: Int32 = 1
    public var trainerEosId: Int32 = 2
    public var trainerPadId: Int32 = -1
    public var byteFallback = false
    public var treatWhitespaceAsSuffix = false
    public var normalizer = NormalizerSpec()

    /// Parses a serialized `ModelProto`.
    public init(bytes: [UInt8]) throws(SentencePieceError) {
        var reader = SentencePieceProtoReader(bytes: bytes, range: 0..<bytes.count)
        while let (field, value) = try reader.next() {
            guard let range = value.range else { continue }
            switch field {
            case 1: pieces.append(try Self.parsePiece(bytes, range, index: pieces.count))
            case 2: try parseTrainerSpec(bytes, range)
            case 3: try parseNormalizerSpec(bytes, range)
            default: continue  // self_test_data, denormalizer_spec, extensions
            }
        }
        guard !pieces.isEmpty else { throw .noPieces }
    }

    private static func parsePiece(_ bytes: [UInt8], _ range: Range<Int>, index: Int) throws(SentencePieceError) -> Piece {
        var reader = SentencePieceProtoReader(bytes: bytes, range: range)
        var piece = Piece(piece: "", score: 0, type: .normal)
        while let (field, value) = try reader.next() {
            switch field {
            case 1:
                if let r = value.range { piece.piece = try reader.string(r, what: "piece \(index)") }
            case 2:
                if let f = value.float { piece.score = f }
            case 3:
                // An enum value this version does not know is kept as an unknown field by proto2,
                // leaving the default (NORMAL).
                if let t = value.int32, let type = PieceType(rawValue: t) { piece.type = type }
            default: continue
            }
        }
        return piece
    }

    private mutating func parseTrainerSpec(_ bytes: [UInt8], _ range: Range<Int>) throws(SentencePieceError) {
        var reader = SentencePieceProtoReader(bytes: bytes, range: range)
        while let (field, value) = try reader.next() {
            switch field {
            case 3: if let v = value.int32 { modelType = v }
            case 24: if let v = value.bool { treatWhitespaceAsSuffix = v }
            case 35: if let v = value.bool { byteFallback = v }
            case 40: if let v = value.int32 { trainerUnkId = v }
            case 41: if let v = value.int32 { trainerBosId = v }
            case 42: if let v = value.int32 { trainerEosId = v }
            case 43: if let v = value.int32 { trainerPadId = v }
            default: continue
            }
        }
    }

    private mutating func parseNormalizerSpec(_ bytes: [UInt8], _ range: Range<Int>) throws(SentencePieceError) {
        var reader = SentencePieceProtoReader(bytes: bytes, range: range)
        while let (field, value) = try reader.next() {
            switch field {
            case 1: if let r = value.range { normalizer.name = try reader.string(r, what: "normalizer name") }
            case 2: if let r = value.range { normalizer.precompiledCharsmap = Array(bytes[r]) }
            case 3: if let v = value.bool { normalizer.addDummyPrefix = v }
            case 4: if let v = value.bool { normalizer.removeExtraWhitespaces = v }
            case 5: if let v = value.bool { normalizer.escapeWhitespaces = v }
            default: continue
            }
        }
    }
}
