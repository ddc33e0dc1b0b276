#!/usr/bin/env python3
"""Reference data for pixconv's caption cleaning (fixtures/captions/expected.json).

Run with venv/bin/python from the repository root, after scripts/make_fixtures.py has written
fixtures/tiny-pixart-512/. Needs beautifulsoup4 and ftfy (scripts/requirements-fixtures.txt):
without them diffusers silently falls back to clean_caption=False, so this script refuses to run.
Deterministic: the corpus is fixed, no randomness.

For every corpus prompt, diffusers' own code gives the expected values:
- `cleaned`: PixArtAlphaPipeline._text_preprocessing(prompt, clean_caption=True)[0] (that is
  `_clean_caption` applied twice), called with a stand-in `self` that has only what the two
  methods use (`bad_punct_regex`, `_clean_caption`), so no model is loaded;
- `first_pass`: one `_clean_caption` call (to locate a difference);
- `ids`, `mask`: transformers' T5Tokenizer of fixtures/tiny-pixart-512/tokenizer on `cleaned`,
  called as PixArtAlphaPipeline.encode_prompt calls it (padding="max_length", max_length=120,
  truncation=True, add_special_tokens=True), as scripts/make_text_reference.py does.
`helpers` holds the Python functions the cleaning is built from, on hand-picked inputs:
urllib.parse.unquote_plus, html.unescape, BeautifulSoup(text, "html.parser").text and
ftfy.fix_text.
"""
import json
import re
import types
import urllib.parse
import html
import unicodedata
from pathlib import Path

import bs4
import diffusers
import ftfy
import transformers
from bs4 import BeautifulSoup
from diffusers import PixArtAlphaPipeline
from diffusers.utils import is_bs4_available, is_ftfy_available
from transformers import T5Tokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "captions" / "expected.json"
TOKENIZER = ROOT / "fixtures" / "tiny-pixart-512" / "tokenizer"
MAX_LENGTH = 120

CORPUS = [
    # plain prompts
    "A small cactus with a happy face in the Sahara desert.",
    "An astronaut riding a green horse",
    "Pirate ship trapped in a cosmic maelstrom nebula, rendered in cosmic beach whirlpool engine",
    "  Leading and trailing spaces, MIXED Case  ",
    "a photo of a cat. a photo of a dog",
    "close-up photo of a lion, 85mm, f/1.8, bokeh",
    "portrait of a woman : oil on canvas",
    "line one\nline two\r\nline three",
    "tabs\tand   many    spaces",
    "literal backslash-n: first\\nsecond",
    "",
    "   ",
    # URLs
    "a cat, see https://example.com/cats?id=3 for more",
    "visit www.example.org/gallery now",
    "http://foo.ru/bar/baz.html and ftp://x.y",
    "my site example.net/path/to-page! is cool",
    "email me at someone@example.com please",
    "https://t.co/AbC123",
    "www:example",
    "shop.example.co/item and news.bbc.co.uk",
    "the best.it/ site",
    # HTML tags and entities
    "<b>bold</b> and <i>italic</i> text",
    "<p>paragraph one</p><p>paragraph two</p>",
    "a <br> line <br/> break",
    "<a href=\"https://example.com\">link text</a>",
    "<script>var x = 1;</script>visible",
    "<style>p {color: red}</style>styled",
    "<!-- a comment -->after comment",
    "<!DOCTYPE html><html><body>doc</body></html>",
    "<?php echo 1; ?>php",
    "a < b and c > d",
    "x<y>z",
    "unclosed <b tag",
    "tom &amp; jerry",
    "tom &amp jerry",
    "fish &amp;amp; chips",
    "&quot;quoted&quot; words",
    "&lt;tag&gt; shown",
    "caf&eacute; and na&iuml;ve",
    "caf&eacute and &copy 2020",
    "&nbsp;non&nbsp;breaking&nbsp;",
    "&#39;apostrophe&#39; and &#x27;hex&#x27;",
    "&#8217;curly&#8217; &#8220;double&#8221;",
    "&#150; dash and &#151; em",
    "&#0; zero &#x110000; big &#xd800; surrogate",
    "&#65 &#66; &#x43",
    "&unknownentity; and &notit; &notin;",
    "&amp;lt;b&amp;gt;double escaped",
    "&amp;#8217;double numeric",
    "&#128512; emoji entity",
    "&frac12; cup, &frac34 cup",
    "ampersand at end &",
    "&#39",
    # @handles and hashtags
    "@user_name posted a photo",
    "photo by @john.doe and @jane",
    "#sunset #beach #2023",
    "#1 best #123 ranked #12345 items #1234",
    "tag#42 inside",
    # numbers, dates, ids
    "123456 and 1234567 but 12345",
    "the year 2023 and 12:30",
    "article 4:56   ",
    "page 12 of 30",
    "price 3.50 and 1,000,000",
    "born on 2020-01-15 or 15/01/2020",
    "ip 192.168.0.1 and 10.0.0.255",
    "version 1.2.3.4.5",
    # file names
    "image.png and photo.JPG and doc.pdf",
    "download app.apk now",
    "wallpaper 4k jpg images",
    "video.mp4 clip",
    "png image of a tree",
    # dimensions and model numbers
    "1920x1080 wallpaper",
    "poster 24x36 inch, 2.5x3.5 cm",
    "size 10х20 (cyrillic x) and 3×4",
    "model jc6640 camera",
    "part jc6640vc and 6640vc231",
    "code j2d1a2a and ab12cd34ef",
    "rtx4090 gpu and a100",
    "iphone 15 pro",
    # commercial words
    "free shipping worldwide shipping",
    "worldwide free shipping on all orders",
    "free download free",
    "click for details and click on here",
    "download the file",
    # quotes and dashes
    "\"double quoted prompt\"",
    "'single quoted prompt'",
    "«guillemets» and “curly” and ‘single curly’",
    "`backticks´ and ¨diaeresis",
    "''two singles'' and \"\"\"three doubles\"\"\"",
    "em—dash en–dash minus−sign hyphen‐char ‑ ⁓ 〜",
    "wave〜dash and fullwidth－minus",
    "this-is-my-cute-cat",
    "this_is_my_cute_cat",
    "a-b c-d",
    "well... maybe.. yes",
    "a . b . c",
    "trailing comma,",
    "-leading dash",
    ":colon start and plus end+",
    ".hidden",
    "'quoted start only",
    # bad punctuation
    "***AUSVERKAUFT***",
    "price: $5 ~ 10 | 20 / 30 * 40",
    "(brackets) [square] {curly}",
    "copyright © 2020 ® ™ • · º ½ ¾ ¿ ¡ §",
    "back\\slash and forward/slash",
    "hello,world.this is/a test",
    "end with question?",
    # + and %xx
    "a+red+fox+in+the+snow",
    "100%25 cotton",
    "caf%C3%A9 au lait",
    "50% off",
    "%E2%80%99 and %ZZ and %4",
    "bad %FF%FE bytes",
    "c++ programming",
    "1+1=2",
    # CJK, emoji, other scripts
    "日本語のテキスト and 中文字符",
    "ひらがな カタカナ ｶﾀｶﾅ",
    "한국어 텍스트",
    "㈱ company ㎏ weight ㍻ era",
    "䷀ hexagram and ㇀ stroke",
    "emoji 😀🐱🚀 and 👍🏽 family 👨‍👩‍👧",
    "Москва красная площадь",
    "ΑΛΦΑ ΟΔΟΣ σοφία",
    "مرحبا بالعالم",
    "Ünïcödé ÀÉÎÕÜ straße İstanbul",
    "ﬁne ﬂoral ligatures",
    "ＦＵＬＬ－ＷＩＤＴＨ ｌｅｔｔｅｒｓ １２３",
    "decomposed e\u0301 and a\u0300",
    "zero\u200bwidth and soft\u00adhyphen",
    "control \x07 bell \x1b[31mred\x1b[0m",
    "superscript x² and ½",
    # mojibake
    "cafÃ©",
    "itâ€™s a nice day",
    "â€œquotedâ€\x9d",
    "Ã¼ber cool",
    "naÃ¯ve rÃ©sumÃ©",
    "donâ€™t stop",
    "Ð¿Ñ€Ð¸Ð²ÐµÑ‚",
    "voilÃ  le travail",
    "â€” dash",
    # <person> and misc
    "<person> standing on a hill",
    "a <person> with a dog",
    "RT @someone: great pic http://t.co/xyz #photo",
    "Buy now!!! 50% OFF www.shop.com free shipping",
    "IMG_1234.JPG",
    "DSC00123",
    "screenshot 2023-05-01 at 10.15.32.png",
    "high quality, 8k, uhd, masterpiece",
    "a_b_c_d_e",
    "a-b-c-d",
    "a-b-c",
]

# hand-picked inputs for the helper functions
UNQUOTE_PLUS = ["plain", "a+b", "%41%42", "%e2%82%ac euro", "%C3%A9", "%C3", "%c3%28", "%ZZ", "%4",
                "%", "100%", "%%41", "caf%C3%A9+%2B+plus", "é%C3%A9", "%ED%A0%80", "%F0%9F%98%80",
                "%F0%9F%98", "%80%80", "%C0%AF", "+%20+", "%f4%90%80%80", "%e2%82"]
UNESCAPE = ["&amp;", "&amp", "&ampx", "&amp;amp;", "&lt;&gt;", "&eacute;", "&eacute", "&Eacute;",
            "&notit;", "&notin;", "&notin", "&not", "&xyz;", "&#65;", "&#65", "&#x41;", "&#X41",
            "&#0;", "&#13;", "&#128;", "&#129;", "&#150;", "&#1;", "&#11;", "&#127;", "&#xd800;",
            "&#x110000;", "&#99999999999;", "&#xfffe;", "&#x1fffe;", "&#xfdd0;", "&frac12;",
            "&frac12", "&nbsp", "&#;", "&#x;", "& amp;", "&&amp;", "&acE;", "&NotEqualTilde;",
            "&thinsp;", "&fjlig;", "&aacute", "&aacutex", "&ccedil;a", "text & more", "&#x1F600;",
            "&quot&quot;", "&gt", "&lt3"]
SOUP = ["plain text", "<b>bold</b>", "<p>one</p><p>two</p>", "a <br> b", "a<br/>b",
        "<a href=\"x\">link</a>", "<script>x < y</script>after", "<style>p{}</style>s",
        "<template>t</template>u", "<!-- c -->d", "<!doctype html>e", "<?pi?>f", "a < b", "a <b",
        "x<y>z", "a > b", "</b>end", "</>x", "</ b>y", "<b>unclosed", "&amp; &lt; &gt;",
        "&amp &copy x", "&unknown; y", "&unknown y", "&#65;&#x42;", "&#65 z", "&#150;", "&#0;",
        "&#xd800;", "&#99999999;", "&#q; <b>x</b>", "&#q; <b>x</b> &#z; <i>y</i>", "&", "a &",
        "&#39", "&amp", "tail &a", "<b> </b>", "<b>\n\n</b>", "<pre> </pre>", "<b>\t \x0c</b>",
        "<b>\u00a0</b>", "<![CDATA[cdata]]>x", "<!bogus>y", "<rt>ruby</rt>z",
        "<img src=\"a.png\" alt=\"alt\">w", "<b class=x>c</b>", "<b/>d", "<br>  <br>",
        "text\n<b>x</b>\n", "<1b>", "< b>", "<b", "<", "a<", "<b>x</b", "<p", "tom &amp; jerry",
        "&notin; &notit; &not x", "&eacute&eacute;"]
FTFY = ["cafÃ©", "itâ€™s", "â€œquotedâ€\x9d", "Ã¼ber", "naÃ¯ve rÃ©sumÃ©", "plain text",
        "ﬁne ﬂoral", "ＦＵＬＬ １２３", "ｶﾀｶﾅ", "“curly” ‘quotes’", "line\r\nbreak", "a\x07b",
        "\x1b[31mred\x1b[0m", "e\u0301", "&amp;", "&eacute; <b>", "&#8217;", "zero\u200bwidth",
        "soft\u00adhyphen", "Ð¿Ñ€Ð¸Ð²ÐµÑ‚", "voilÃ  le travail", "â€” dash", "\ufeffbom",
        "x\u0080y", "\u0093quoted\u0094", "sÃ³", "Ã", "Ã ", "pÃ¢tÃ©", "✔ ok", "ÃƒÂ©"]


def clean(prompt: str) -> tuple[str, str]:
    """diffusers' functions, unbound, with a stand-in self (no model)."""
    me = types.SimpleNamespace(bad_punct_regex=PixArtAlphaPipeline.bad_punct_regex)
    me._clean_caption = lambda caption: PixArtAlphaPipeline._clean_caption(me, caption)
    cleaned = PixArtAlphaPipeline._text_preprocessing(me, prompt, clean_caption=True)[0]
    return cleaned, PixArtAlphaPipeline._clean_caption(me, prompt)


def main() -> None:
    if not (is_bs4_available() and is_ftfy_available()):
        raise SystemExit("make_caption_reference.py needs beautifulsoup4 and ftfy "
                         "(diffusers falls back to clean_caption=False without them)")
    tok = T5Tokenizer.from_pretrained(str(TOKENIZER), extra_ids=0, legacy=True)
    cases = []
    for prompt in CORPUS:
        cleaned, first = clean(prompt)
        enc = tok(cleaned, padding="max_length", max_length=MAX_LENGTH, truncation=True,
                  add_special_tokens=True)
        cases.append({"prompt": prompt, "first_pass": first, "cleaned": cleaned,
                      "ids": [int(i) for i in enc["input_ids"]],
                      "mask": [int(m) for m in enc["attention_mask"]]})
    helpers = {
        "unquote_plus": [[s, urllib.parse.unquote_plus(s)] for s in UNQUOTE_PLUS],
        "html_unescape": [[s, html.unescape(s)] for s in UNESCAPE],
        "soup_text": [[s, BeautifulSoup(s, features="html.parser").text] for s in SOUP],
        "ftfy_fix_text": [[s, ftfy.fix_text(s)] for s in FTFY],
    }
    doc = {
        "generator": "scripts/make_caption_reference.py",
        "function": "diffusers PixArtAlphaPipeline._text_preprocessing(text, clean_caption=True)",
        "versions": {"diffusers": diffusers.__version__, "beautifulsoup4": bs4.__version__,
                     "ftfy": ftfy.__version__, "transformers": transformers.__version__,
                     "python_unicode": unicodedata.unidata_version},
        "tokenizer": str(TOKENIZER.relative_to(ROOT)),
        "max_length": MAX_LENGTH,
        "helpers": helpers,
        "cases": cases,
    }
    text = json.dumps(doc, ensure_ascii=True, indent=1)
    # one line per list of integers (ids, masks) and per helper pair keeps the file diffable
    text = re.sub(r"\[\n\s*([^\[\]{}]*?)\n\s*\]",
                  lambda m: "[" + re.sub(r",\n\s*", ", ", m.group(1)) + "]", text)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text + "\n")
    changed = sum(c["cleaned"] != c["prompt"].lower().strip() for c in cases)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(cases)} prompts, {changed} changed by cleaning "
          f"beyond lower().strip())")


if __name__ == "__main__":
    main()
