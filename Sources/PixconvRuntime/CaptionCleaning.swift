import Foundation

/// PixArt's prompt preprocessing with `clean_caption=True`, diffusers' default
/// (D: `pipeline_pixart_alpha.py::_text_preprocessing`): `_clean_caption` applied twice.
/// formats/caption-cleaning.md lists the steps, the Python semantics each reproduces and the inputs
/// where the result can differ from diffusers'.
public func pixArtCleanCaption(_ prompt: String) -> String {
    CaptionCleaner.clean(CaptionCleaner.clean(prompt))
}

/// The preprocessing a request asks for: cleaned (diffusers' default) or Python `lower().strip()`.
public func pixArtPreprocess(_ prompt: String, cleanCaption: Bool) -> String {
    cleanCaption ? pixArtCleanCaption(prompt) : pixArtPreprocess(prompt)
}

/// One pass of diffusers' `_clean_caption`, one function per step, in its order. Patterns are
/// diffusers' own, in Python syntax (`PythonRegex` gives them Python's meaning).
enum CaptionCleaner {
    static func clean(_ text: String) -> String {
        var s = text                      // str(caption)
        s = pythonUnquotePlus(s)          // urllib.parse.unquote_plus
        s = pythonLower(pythonStrip(s))   // caption.strip().lower()
        s = person(s)
        s = urls(s)
        s = soupText(s)                   // BeautifulSoup(caption, features="html.parser").text
        s = nicknames(s)
        s = cjk(s)
        s = dashes(s)
        s = quotes(s)
        s = quotEntities(s)
        s = ipAddresses(s)
        s = articleIds(s)
        s = escapedNewlines(s)
        s = numbersAndFileNames(s)
        s = repeatedQuotesAndDots(s)
        s = badPunctuation(s)
        s = separators(s)
        s = ftfyFixText(s)                // ftfy.fix_text
        s = pythonHTMLUnescape(pythonHTMLUnescape(s))  // html.unescape twice
        s = modelNumbers(s)
        s = shopPhrases(s)
        s = alphanumericMixtures(s)
        s = dimensions(s)
        s = spacing(s)
        // (diffusers calls caption.strip() here and drops its result)
        s = ends(s)
        return pythonStrip(s)
    }

    private static func sub(_ pattern: String, _ template: String, _ s: String) -> String {
        PythonRegex(pattern).sub(template, s)
    }

    /// `<person>` → `person`.
    static func person(_ s: String) -> String { sub("<person>", "person", s) }

    /// URLs: `http(s):` or `www:` prefixes, and host names in .com .co .ru .net .org .edu .gov .it.
    static func urls(_ s: String) -> String {
        var s = sub(#"\b((?:https?:(?:\/{1,3}|[a-zA-Z0-9%])|[a-zA-Z0-9.\-]+[.](?:com|co|ru|net|org|edu|gov|it)[\w/-]*\b\/?(?!@)))"#, "", s)
        s = sub(#"\b((?:www:(?:\/{1,3}|[a-zA-Z0-9%])|[a-zA-Z0-9.\-]+[.](?:com|co|ru|net|org|edu|gov|it)[\w/-]*\b\/?(?!@)))"#, "", s)
        return s
    }

    /// `@nickname`.
    static func nicknames(_ s: String) -> String { sub(#"@[\w\d]+\b"#, "", s) }

    /// CJK strokes, katakana phonetic extensions, enclosed CJK, CJK compatibility, CJK ideographs
    /// (extension A and the unified block), Yijing hexagrams.
    static func cjk(_ s: String) -> String {
        var s = s
        for range in [#"[\u31c0-\u31ef]+"#, #"[\u31f0-\u31ff]+"#, #"[\u3200-\u32ff]+"#, #"[\u3300-\u33ff]+"#,
                      #"[\u3400-\u4dbf]+"#, #"[\u4dc0-\u4dff]+"#, #"[\u4e00-\u9fff]+"#] {
            s = sub(range, "", s)
        }
        return s
    }

    /// Every kind of dash → `-`.
    static func dashes(_ s: String) -> String {
        sub(#"[\u002D\u058A\u05BE\u1400\u1806\u2010-\u2015\u2E17\u2E1A\u2E3A\u2E3B\u2E40\u301C\u3030\u30A0\uFE31\uFE32\uFE58\uFE63\uFF0D]+"#, "-", s)
    }

    /// Quotes to `"` and `'`.
    static func quotes(_ s: String) -> String {
        sub("[‘’]", "'", sub("[`´«»“”¨]", "\"", s))
    }

    /// `&quot;` (or `&quot`) and `&amp` deleted.
    static func quotEntities(_ s: String) -> String { sub("&amp", "", sub("&quot;?", "", s)) }

    /// IP addresses → space.
    static func ipAddresses(_ s: String) -> String { sub(#"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"#, " ", s) }

    /// Article ids at the end (`4:56`).
    static func articleIds(_ s: String) -> String { sub(#"\d:\d\d\s+$"#, "", s) }

    /// A literal backslash-n → space.
    static func escapedNewlines(_ s: String) -> String { sub(#"\\n"#, " ", s) }

    /// `#123`, `#12345…`, numbers of 6+ digits and file names with image, document or app extensions.
    static func numbersAndFileNames(_ s: String) -> String {
        var s = sub(#"#\d{1,3}\b"#, "", s)
        s = sub(#"#\d{5,}\b"#, "", s)
        s = sub(#"\b\d{6,}\b"#, "", s)
        s = sub(#"[\S]+\.(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)"#, "", s)
        return s
    }

    /// 2+ quotes → `"`, 2+ dots → space.
    static func repeatedQuotesAndDots(_ s: String) -> String {
        sub(#"[\.]{2,}"#, " ", sub(#"[\"\']{2,}"#, "\"", s))
    }

    /// diffusers' `bad_punct_regex` runs → space, then ` . ` → space.
    static func badPunctuation(_ s: String) -> String {
        let s = sub(#"[#®•©™&@·º½¾¿¡§~\)\(\]\[\}\{\|\\\/\*]{1,}"#, " ", s)
        return sub(#"\s+\.\s+"#, " ", s)
    }

    /// this-is-my-cute-cat / this_is_my_cute_cat: with more than 3 of `-` and `_`, all → space.
    static func separators(_ s: String) -> String {
        let regex2 = PythonRegex(#"(?:\-|\_)"#)
        return regex2.count(s) > 3 ? regex2.sub(" ", s) : s
    }

    /// jc6640, jc6640vc, 6640vc231.
    static func modelNumbers(_ s: String) -> String {
        var s = sub(#"\b[a-zA-Z]{1,3}\d{3,15}\b"#, "", s)
        s = sub(#"\b[a-zA-Z]+\d+[a-zA-Z]+\b"#, "", s)
        s = sub(#"\b\d+[a-zA-Z]+\d+\b"#, "", s)
        return s
    }

    /// Shop and download phrases, image-type words, "page N".
    static func shopPhrases(_ s: String) -> String {
        var s = sub(#"(worldwide\s+)?(free\s+)?shipping"#, "", s)
        s = sub(#"(free\s)?download(\sfree)?"#, "", s)
        s = sub(#"\bclick\b\s(?:for|on)\s\w+"#, "", s)
        s = sub(#"\b(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)(\simage[s]?)?"#, "", s)
        s = sub(#"\bpage\s+\d+\b"#, "", s)
        return s
    }

    /// j2d1a2a…-like letter/digit mixtures → space.
    static func alphanumericMixtures(_ s: String) -> String {
        sub(#"\b\d*[a-zA-Z]+\d+[a-zA-Z]+\d+[a-zA-Z\d]*\b"#, " ", s)
    }

    /// 1920x1080, 2.5x3.5 (Latin x, Cyrillic х, ×).
    static func dimensions(_ s: String) -> String { sub(#"\b\d+\.?\d*[xх×]\d+\.?\d*\b"#, "", s) }

    /// ` : ` → `: `, a space after `,` `.` `/` that follow a non-digit, whitespace runs → one space.
    static func spacing(_ s: String) -> String {
        var s = sub(#"\b\s+\:\s+"#, ": ", s)
        s = sub(#"(\D[,\./])\b"#, "$1 ", s)
        s = sub(#"\s+"#, " ", s)
        return s
    }

    /// Enclosing quotes, one leading `'_,-:;`, one trailing `'_,-:+`, a lone `.word`.
    static func ends(_ s: String) -> String {
        var s = sub(#"^[\"\']([\w\W]+)[\"\']$"#, "$1", s)
        s = sub(#"^[\'\_,\-\:;]"#, "", s)
        s = sub(#"[\'\_,\-\:\-\+]$"#, "", s)
        s = sub(#"^\.\S+$"#, "", s)
        return s
    }
}
