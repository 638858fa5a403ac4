//! The one XML escape for TwiML, shared by the guests (the voice webhook's
//! TwiML, `hotline-agent`) and the host (the TwiML it writes itself,
//! `host/twilio/twiml.rs`), so both sides write text into XML by the same
//! rules.

/// Escapes `s` for XML 1.0 content and for attribute values in double or
/// single quotes: `&`, `<`, `>`, `"` and `'` become entities; tab, line
/// feed and carriage return are kept; every other control character below
/// 0x20 is dropped (XML 1.0 allows none of them, not even as a character
/// reference). Everything else, non-ASCII included, is kept as it is.
///
/// A parser keeps the kept whitespace in content; in an attribute value it
/// reads each of them as a space (XML's attribute-value normalization).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn the_case_table() {
        let cases = [
            ("", ""),
            ("plain text", "plain text"),
            ("&", "&amp;"),
            ("<", "&lt;"),
            (">", "&gt;"),
            ("\"", "&quot;"),
            ("'", "&apos;"),
            ("&amp;", "&amp;amp;"),
            ("\t", "\t"),
            ("\n", "\n"),
            ("\r", "\r"),
            ("a\u{0}b", "ab"),
            ("a\u{1}b\u{8}c\u{b}d\u{c}e\u{1b}f\u{1f}g", "abcdefg"),
            ("\u{7f}", "\u{7f}"),
            (" ", " "),
            ("Grüße, 東京 — ☎ 📞", "Grüße, 東京 — ☎ 📞"),
            (
                r#"CA1"/><Hangup/><Say a='x'>&amp;</Say>"#,
                "CA1&quot;/&gt;&lt;Hangup/&gt;&lt;Say a=&apos;x&apos;&gt;&amp;amp;&lt;/Say&gt;",
            ),
        ];
        for (raw, escaped) in cases {
            assert_eq!(escape(raw), escaped, "escape({raw:?})");
        }
    }

    /// What a parser reads back is the text, less the dropped controls; in an
    /// attribute (either quote) the kept whitespace reads as spaces.
    #[test]
    fn a_parser_reads_the_text_back() {
        let raw = "+1<555>&\"'\u{1} Grüße\tline\nnext\rend";
        let content = "+1<555>&\"' Grüße\tline\nnext\nend"; // a parser reads CR as LF
        let attribute = "+1<555>&\"' Grüße line next end";
        for quote in ['"', '\''] {
            let xml = format!("<Response a={quote}{}{quote}><Say>{}</Say></Response>", escape(raw), escape(raw));
            let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
            let root = doc.root_element();
            assert_eq!(root.attribute("a"), Some(attribute), "{xml}");
            assert_eq!(root.first_element_child().and_then(|say| say.text()), Some(content), "{xml}");
        }
    }
}
