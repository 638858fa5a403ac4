//! Twilio's media message read in one pass over its bytes, without a
//! deserializer: fifty a second in every call, it was a tenth of the
//! server's instructions through `serde_json`, most of them spent scanning
//! the 216-character payload for escapes a byte or a word at a time.
//!
//! The scan accepts only JSON it can read exactly: an object whose values
//! are strings without escapes, plain numbers, or (for `media`) such an
//! object, each known key once. Anything else (an escape, `true`, an array,
//! a `"+40"` timestamp, a duplicate key, a truncated frame) returns `None`,
//! and the frame is parsed by `serde_json` as before, so what a frame means,
//! and which frames are refused, does not depend on which path read it.

/// `(timestamp, payload)` of a media message, or `None`: not media, or not
/// in the shape this scan reads (see the module's comment).
pub fn media(text: &str) -> Option<(u64, &str)> {
    let mut scan = Scan { text, at: 0 };
    let (mut event, mut media) = (None, None);
    scan.object(|scan, key| match key {
        "event" => once(&mut event, scan.string()?),
        "media" => once(&mut media, scan.media()?),
        _ => scan.skip_value(),
    })?;
    scan.whitespace();
    if scan.at != text.len() || event? != "media" {
        return None;
    }
    media
}

/// Sets `slot` once: a second value for a known key is left to `serde_json`.
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

struct Scan<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// `{ "key": value, ... }`, each value read by `value`.
    fn object(&mut self, mut value: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.whitespace();
        self.eat(b'{')?;
        self.whitespace();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.whitespace();
            let key = self.string()?;
            self.whitespace();
            self.eat(b':')?;
            self.whitespace();
            value(self, key)?;
            self.whitespace();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string without escapes or control characters, borrowed.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let rest = &self.text.as_bytes()[self.at..];
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        // The smallest byte, a vector at a time: no early exit to stop that.
        let control = rest[..end].iter().fold(u8::MAX, |least, &b| least.min(b)) < 0x20;
        if rest[end] != b'"' || control {
            return None;
        }
        // Both ends are ASCII quotes: character boundaries.
        let string = &self.text[self.at..self.at + end];
        self.at += end + 1;
        Some(string)
    }

    /// Digits, as JSON writes an integer: no sign, no leading zero.
    fn digits(&mut self) -> Option<&'a str> {
        let digits = self.some_digits()?;
        (digits == "0" || !digits.starts_with('0')).then_some(digits)
    }

    /// A value that is skipped: a string or a number.
    fn skip_value(&mut self) -> Option<()> {
        if self.peek()? == b'"' {
            return self.string().map(drop);
        }
        self.eat(b'-');
        self.digits()?;
        if self.eat(b'.').is_some() {
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    /// One or more digits, leading zeros allowed (a fraction, an exponent).
    fn some_digits(&mut self) -> Option<&'a str> {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        (self.at > start).then(|| &self.text[start..self.at])
    }

    /// The `media` object: its timestamp (a number, or digits in a string,
    /// as Twilio sends it) and its payload.
    fn media(&mut self) -> Option<(u64, &'a str)> {
        let (mut timestamp, mut payload) = (None, None);
        self.object(|scan, key| match key {
            "timestamp" => {
                let digits = match scan.peek()? {
                    b'"' => scan.string()?,
                    _ => scan.digits()?,
                };
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                once(&mut timestamp, digits.parse().ok()?)
            }
            "payload" => once(&mut payload, scan.string()?),
            _ => scan.skip_value(),
        })?;
        Some((timestamp?, payload?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Frame;

    /// What `serde_json` makes of `text` (the path every frame took before).
    fn by_serde(text: &str) -> Option<(u64, &str)> {
        match Frame::parse_with_serde(text) {
            Ok(Frame::Media { timestamp, payload }) => Some((timestamp, payload)),
            _ => None,
        }
    }

    /// The scan reads `text` as `serde_json` does, or leaves it to it.
    fn agrees(text: &str) -> Option<(u64, &str)> {
        let scanned = media(text);
        if scanned.is_some() {
            assert_eq!(scanned, by_serde(text), "{text:?}");
        }
        scanned
    }

    const TWILIO: &str = r#"{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"2","timestamp":"40","payload":"//8A+w=="},"streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0"}"#;

    #[test]
    fn twilio_frames_are_read_in_one_pass() {
        assert_eq!(agrees(TWILIO), Some((40, "//8A+w==")));
        let spaced = "{ \"event\" : \"media\" ,\n\t\"media\" : { \"payload\" : \"AAA=\" , \"timestamp\" : 60 } }\r\n";
        assert_eq!(agrees(spaced), Some((60, "AAA=")));
        let extra = r#"{"media":{"timestamp":0,"payload":"","x":-1.5e+3,"y":"z"},"event":"media","n":0,"f":10.25}"#;
        assert_eq!(agrees(extra), Some((0, "")));
    }

    #[test]
    fn what_the_scan_does_not_read_exactly_is_left_to_serde() {
        for text in [
            // Escapes, control characters, other value types, odd numbers.
            r#"{"event":"media","media":{"timestamp":"0","payload":"\/\/8="}}"#,
            "{\"event\":\"media\",\"media\":{\"timestamp\":\"0\",\"payload\":\"AA\u{1}=\"}}",
            r#"{"event":"media","media":{"timestamp":"+40","payload":"AAA="}}"#,
            r#"{"event":"media","media":{"timestamp":" 40 ","payload":"AAA="}}"#,
            r#"{"event":"media","media":{"timestamp":040,"payload":"AAA="}}"#,
            r#"{"event":"media","media":{"timestamp":40.0,"payload":"AAA="}}"#,
            r#"{"event":"media","media":{"timestamp":"99999999999999999999","payload":"AAA="}}"#,
            r#"{"event":"media","media":{"payload":"AAA="}}"#,
            r#"{"event":"media","media":{"timestamp":1,"payload":"AAA=","track":null}}"#,
            r#"{"event":"media","tags":[1],"media":{"timestamp":1,"payload":"AAA="}}"#,
            // Duplicates, other events, no media, trailing garbage.
            r#"{"event":"media","event":"mark","media":{"timestamp":1,"payload":"AAA="}}"#,
            r#"{"event":"media","media":{"timestamp":1,"timestamp":2,"payload":"AAA="}}"#,
            r#"{"event":"mark","media":{"timestamp":1,"payload":"AAA="}}"#,
            r#"{"event":"media"}"#,
            r#"{"event":"media","media":{"timestamp":1,"payload":"AAA="}} x"#,
            r#"{"event":"media","media":{"timestamp":1,"payload":"AAA="},}"#,
            "",
            "not json",
        ] {
            assert_eq!(agrees(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_frame_cut_anywhere_or_with_any_byte_changed_is_read_as_serde_reads_it() {
        let mut scanned = 0;
        for end in 0..TWILIO.len() {
            assert_eq!(agrees(&TWILIO[..end]), None, "cut at {end}");
        }
        let bytes = TWILIO.as_bytes();
        for at in 0..bytes.len() {
            for replacement in [b' ', b'"', b'\\', b'{', b'}', b',', b':', b'0', b'-', b'a', b'\n', 0x01] {
                let mut changed = bytes.to_vec();
                changed[at] = replacement;
                let Ok(text) = std::str::from_utf8(&changed) else { continue };
                scanned += usize::from(agrees(text).is_some());
            }
        }
        assert!(scanned > 100, "most harmless changes still take the scan: {scanned}");
    }
}
