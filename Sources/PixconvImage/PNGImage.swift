import CPNG
import PixconvCore

/// 8-bit RGB PNG files through libpng's simplified `png_image` API (no setjmp in Swift frames),
/// plus tEXt/iTXt text chunks, which that API cannot handle and `PNGChunks` adds or reads itself.
public enum PNGImage {
    /// Largest image read or written: 2³⁰ RGB bytes (about 18 900² pixels).
    public static let maxBytes = 1 << 30

    /// Encodes rgb[height, width, 3] and inserts `textChunks` (tEXt for ASCII values, iTXt otherwise) before IEND.
    public static func encode(
        rgb: [UInt8], width: Int, height: Int, textChunks: [(key: String, value: String)] = []
    ) throws(ImageError) -> [UInt8] {
        let (pixels, o1) = width.multipliedReportingOverflow(by: height)
        let (count, o2) = pixels.multipliedReportingOverflow(by: 3)
        guard width > 0, height > 0, !o1, !o2, count <= maxBytes, width <= Int(Int32.max / 3) else {
            throw .tooLarge(file: "<memory>", width: width, height: height)
        }
        guard rgb.count == count else {
            throw .badPixelCount(width: width, height: height, expected: count, actual: rgb.count)
        }
        var text: [UInt8] = []
        for (key, value) in textChunks { text += try PNGChunks.textChunk(key: key, value: value) }

        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = png_uint_32(PNG_FORMAT_RGB)
        var size: png_alloc_size_t = 0
        // First call with no buffer: libpng reports the size it needs.
        let sized = rgb.withUnsafeBytes { png_image_write_to_memory(&image, nil, &size, 0, $0.baseAddress, 0, nil) }
        guard sized != 0, size > 0, size <= png_alloc_size_t(Int.max) else {
            throw .libpng(file: "<memory>", message: message(of: &image))
        }
        var png = [UInt8](repeating: 0, count: Int(size))
        let written = png.withUnsafeMutableBytes { out in
            rgb.withUnsafeBytes { png_image_write_to_memory(&image, out.baseAddress, &size, 0, $0.baseAddress, 0, nil) }
        }
        guard written != 0 else { throw .libpng(file: "<memory>", message: message(of: &image)) }
        png.removeSubrange(Int(size)...)
        return text.isEmpty ? png : try PNGChunks.insertBeforeIEND(png, extra: text, file: "<memory>")
    }

    /// Writes rgb[height, width, 3] as a PNG crash-safely (temporary file, fsync, rename).
    public static func write(
        path: String, rgb: [UInt8], width: Int, height: Int, textChunks: [(key: String, value: String)] = [],
        replace: Bool = true
    ) throws {
        let bytes: [UInt8]
        do {
            bytes = try encode(rgb: rgb, width: width, height: height, textChunks: textChunks)
        } catch .libpng(_, let message) {
            throw ImageError.libpng(file: path, message: message)
        }
        try AtomicFile.write(bytes, to: path, replace: replace)
    }

    /// Decodes any PNG libpng reads (gray, palette, 16-bit, alpha, …) to 8-bit sRGB RGB; 16-bit samples
    /// are taken as sRGB-encoded and scaled to 8 bits, alpha is composited onto black, and a gAMA/cHRM
    /// that differs from sRGB is converted by libpng. The chunk structure and every CRC are checked first.
    public static func decode(_ bytes: [UInt8], file: String = "<memory>") throws(ImageError)
        -> (rgb: [UInt8], width: Int, height: Int)
    {
        try decode(bytes, file: file, dropAlpha: false)
    }

    /// Decodes a PNG as diffusers' `load_image` sees it (PIL `Image.open(f).convert("RGB")`): as `decode`,
    /// except that an alpha channel (or tRNS transparency) is dropped, not composited, so every pixel
    /// keeps its stored colour. 16-bit samples are scaled to 8 bits by libpng (PIL keeps the high byte
    /// of 16-bit colour samples and clips 16-bit grey to 255: formats/img2img.md).
    public static func decodeDroppingAlpha(_ bytes: [UInt8], file: String = "<memory>") throws(ImageError)
        -> (rgb: [UInt8], width: Int, height: Int)
    {
        try decode(bytes, file: file, dropAlpha: true)
    }

    /// Reads an image file as `decodeDroppingAlpha` decodes it.
    public static func readDroppingAlpha(path: String) throws -> (rgb: [UInt8], width: Int, height: Int) {
        try decodeDroppingAlpha(try fileBytes(path), file: path)
    }

    private static func decode(_ bytes: [UInt8], file: String, dropAlpha: Bool) throws(ImageError)
        -> (rgb: [UInt8], width: Int, height: Int)
    {
        _ = try PNGChunks.parse(bytes, file: file)
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        var failure: String?
        var result: (rgb: [UInt8], width: Int, height: Int) = ([], 0, 0)
        bytes.withUnsafeBytes { raw in
            guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
                failure = message(of: &image)
                return
            }
            let width = Int(image.width), height = Int(image.height)
            let (pixels, o1) = width.multipliedReportingOverflow(by: height)
            let (count, o2) = pixels.multipliedReportingOverflow(by: dropAlpha ? 4 : 3)
            guard width > 0, height > 0, !o1, !o2, count <= maxBytes else {
                failure = ImageError.tooLarge(file: file, width: width, height: height).description
                return
            }
            image.format = dropAlpha ? png_uint_32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA) : png_uint_32(PNG_FORMAT_RGB)
            // 16-bit samples are sRGB-encoded like 8-bit ones (libpng would otherwise assume linear light).
            image.flags |= png_uint_32(PNG_IMAGE_FLAG_16BIT_sRGB)
            var rgb = [UInt8](repeating: 0, count: count)
            let ok = rgb.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
            guard ok != 0 else {
                failure = message(of: &image)
                return
            }
            if dropAlpha {
                var packed = [UInt8](repeating: 0, count: pixels * 3)
                for i in 0..<pixels {
                    packed[3 * i] = rgb[4 * i]
                    packed[3 * i + 1] = rgb[4 * i + 1]
                    packed[3 * i + 2] = rgb[4 * i + 2]
                }
                rgb = packed
            }
            result = (rgb, width, height)
        }
        if let failure { throw .libpng(file: file, message: failure) }
        return result
    }

    /// Reads an image file as 8-bit RGB (see `decode`).
    public static func read(path: String) throws -> (rgb: [UInt8], width: Int, height: Int) {
        try decode(try fileBytes(path), file: path)
    }

    /// The text chunks (tEXt and uncompressed iTXt) of a PNG stream, in file order.
    public static func textChunks(in bytes: [UInt8], file: String = "<memory>") throws(ImageError)
        -> [(key: String, value: String)]
    {
        PNGChunks.text(in: bytes, chunks: try PNGChunks.parse(bytes, file: file))
    }

    /// The text chunks of a PNG file, in file order.
    public static func readText(path: String) throws -> [(key: String, value: String)] {
        try textChunks(in: try fileBytes(path), file: path)
    }

    private static func fileBytes(_ path: String) throws -> [UInt8] {
        let file = try MappedFile(path: path)
        return withExtendedLifetime(file) { Array(file.bytes) }
    }

    /// libpng's error text (`png_image.message`, a NUL-terminated char[64]).
    private static func message(of image: inout png_image) -> String {
        let text = withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return text.isEmpty ? "unknown error" : text
    }
}
