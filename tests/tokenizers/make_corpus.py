#!/usr/bin/env python3
"""Writes corpus.jsonl: hard strings for tokenizer parity (one {"name", "text"} or {"name", "b64"} per line;
"b64" holds raw bytes that are not valid UTF-8, which Python and lens both read with errors="replace").
Deterministic: the random strings come from a fixed seed. Run from anywhere; rewrites the file next to it."""
import base64
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))

FIXED = {
    "empty": "",
    "ascii": "The quick brown fox jumps over the lazy dog.",
    "leading_space": " Hello world",
    "two_leading_spaces": "  Hello  world",
    "trailing_spaces": "end   ",
    "only_spaces": "     ",
    "single_space": " ",
    "newlines": "line one\nline two\r\n\r\nline three\n\n\n",
    "tabs": "a\tb\t\tc\t",
    "whitespace_zoo": "a\u00a0b\u2003c\u3000d\u200be\u2028f\u2029g\u0085h",
    "contractions": "I'm, you're, he'll, we've, they'd, it's, DON'T, She'S",
    "digits_long": "1234567890123456789012345678901234567890",
    "digits_mixed": "3.14159 2,718 1e-10 0x1F 007 42nd ١٢٣ ４５６",
    "code": "def f(x):\n    return x**2  # square\n\nif __name__ == '__main__':\n\tprint(f(3))",
    "json": '{"key": [1, 2.5, null, true], "nested": {"a": "b\\n"}}',
    "url": "https://example.com/path?q=a+b&x=%20#frag user@mail.org",
    "punct_runs": "!!!??? ... --- *** ### $$$ %%% ^^^ &&& ((())) [[[]]] {{{}}} <<<>>> ||| ~~~ ```",
    "chinese": "我们今天去公园散步，天气很好。人工智能正在改变世界。",
    "japanese": "こんにちは世界。カタカナとひらがなと漢字が混ざった文章です。",
    "korean": "안녕하세요 세계! 한국어 문장입니다.",
    "arabic": "مرحبا بالعالم، هذه جملة عربية.",
    "hebrew": "שלום עולם",
    "hindi": "नमस्ते दुनिया, यह हिंदी है।",
    "thai": "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "russian": "Привет, мир! Съешь же ещё этих мягких французских булок.",
    "greek": "Γειά σου Κόσμε· ΣΊΣΥΦΟΣ σίσυφος",
    "mixed_scripts": "English中文русскийالعربية日本語한국어हिन्दीEnglish",
    "emoji": "I love 🍕 and 🎉! 😀😃😄",
    "emoji_zwj": "family: 👨‍👩‍👧‍👦 flag: 🏳️‍🌈 skin: 👍🏽 keycap: 1️⃣ 🇺🇸🇯🇵",
    "combining": "e\u0301 a\u0308 n\u0303 \u0915\u094d\u0937 Z\u0351\u036b\u0343\u036a\u0302",
    "nfc_nfd": "caf\u00e9 vs cafe\u0301, \u212b vs \u00c5, \ufb01 ligature, \u2460 circled",
    "fullwidth": "ＡＢＣ１２３！？ｶﾀｶﾅ",
    "control_chars": "a\x00b\x01c\x07d\x1be\x7ff\u200dg\ufeffh",
    "bom_start": "\ufeffstart with BOM",
    "private_use": "\ue000\uf8ff\U000f0000",
    "astral": "\U0001d4d0\U0001d4d1 \U00020000\U0002a6d6 \U0001f9ec",
    "replacement_char": "bad \ufffd char",
    "sp_marker": "\u2581already\u2581has\u2581markers \u2581",
    "byte_tokens_literal": "<0x0A> <0xFF> <0x41>",
    "long_word": "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
    "long_spaces": "a" + " " * 50 + "b",
    "long_newlines": "x" + "\n" * 30 + "y",
    "repeated_char": "a" * 200,
    "repeated_emoji": "🙂" * 40,
    "camel_snake": "getHTTPResponseCode snake_case_name SCREAMING_CASE kebab-case-name",
    "math": "∀x∈ℝ: x² ≥ 0 ∧ ∑ᵢ aᵢ ≤ ∞ ½ ¾ ⅓",
    "currency": "$100 €200 £300 ¥400 ₹500 ₿0.01",
    "quotes": "“smart quotes” ‘single’ «guillemets» „German“",
    "special_s": "<s>hello</s>",
    "special_in_word": "foo<s>bar</s>baz",
    "special_spaces": " <s> hello </s> ",
    "special_unk": "a<unk>b <pad> <mask>",
    "special_bos_gemma": "<bos>text<eos> <start_of_turn>user\nhi<end_of_turn>\n",
    "special_llama3": "<|begin_of_text|>Hi<|eot_id|><|start_header_id|>user<|end_header_id|>",
    "special_chatml": "<|im_start|>user\nhello<|im_end|><|endoftext|>",
    "special_deepseek": "<｜begin▁of▁sentence｜>Hi<｜User｜>q<｜Assistant｜>a<｜end▁of▁sentence｜>",
    "special_partial": "<s <|endoftext| <bos <｜begin▁of▁sentence",
    "special_only": "<s>",
    "special_twice": "</s></s>",
}

# Invalid UTF-8 (read with errors="replace"): lone continuation, truncated sequences, overlong, surrogate.
INVALID = {
    "invalid_lone_cont": b"abc\x80def",
    "invalid_truncated": b"caf\xc3 ok \xe2\x82 x \xf0\x9f\x98",
    "invalid_overlong": b"\xc0\xaf\xe0\x80\xaf",
    "invalid_surrogate": b"\xed\xa0\x80\xed\xbf\xbf",
    "invalid_ff": b"\xff\xfe hello \xfe",
}


def random_strings(n):
    rng = random.Random(16)
    pools = ["abcXYZ ", "0123456789", " \t\n", "éüñßøå", "中文字", "🙂👍🏽\u200d", "!?.,;:'\"-()", "\u2581", "<s></s>"]
    out = {}
    for i in range(n):
        k = rng.randint(1, 60)
        out[f"random_{i:02d}"] = "".join(rng.choice(rng.choice(pools)) for _ in range(k))
    return out


def main():
    with open(os.path.join(HERE, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for name, text in {**FIXED, **random_strings(40)}.items():
            f.write(json.dumps({"name": name, "text": text}, ensure_ascii=False) + "\n")
        for name, raw in INVALID.items():
            f.write(json.dumps({"name": name, "b64": base64.b64encode(raw).decode()}) + "\n")


if __name__ == "__main__":
    main()
