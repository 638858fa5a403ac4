//! Strict `application/x-www-form-urlencoded` parsing for webhooks.
//!
//! `form_urlencoded` alone never fails (it decodes lossily); a webhook with
//! broken escapes or bytes is not Twilio's and deserves a 400 with a reason.

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormError {
    #[error("form body is not UTF-8")]
    NotUtf8,
    #[error("bad percent-escape at byte {0}")]
    BadEscape(usize),
    #[error("form field {0:?} has no '='")]
    NoEquals(String),
    #[error("percent-decoded form is not UTF-8")]
    DecodedNotUtf8,
}

pub type Form = Vec<(String, String)>;

pub fn parse(body: &[u8]) -> Result<Form, FormError> {
    let text = std::str::from_utf8(body).map_err(|_| FormError::NotUtf8)?;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%' {
            let ok = bytes.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            if !ok {
                return Err(FormError::BadEscape(i));
            }
        }
    }
    for field in text.split('&').filter(|f| !f.is_empty()) {
        if !field.contains('=') {
            return Err(FormError::NoEquals(field.chars().take(40).collect()));
        }
    }
    // Escapes may still decode to invalid UTF-8, which form_urlencoded
    // would silently replace.
    for field in text.split(['&', '=']) {
        let raw: Vec<u8> = percent_decode(field);
        if std::str::from_utf8(&raw).is_err() {
            return Err(FormError::DecodedNotUtf8);
        }
    }
    Ok(form_urlencoded::parse(body).into_owned().collect())
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_twilio_forms_and_rejects_broken_ones() {
        let f = parse(b"CallSid=CA1&From=%2B15551234567&Caller=a+b").unwrap();
        assert_eq!(f[1], ("From".into(), "+15551234567".into()));
        assert_eq!(f[2].1, "a b");
        assert_eq!(parse(b"CallSid=%zz"), Err(FormError::BadEscape(8)));
        assert_eq!(parse(b"CallSid=%4"), Err(FormError::BadEscape(8)));
        assert_eq!(parse(b"justtext"), Err(FormError::NoEquals("justtext".into())));
        assert_eq!(parse(b"a=%ff"), Err(FormError::DecodedNotUtf8));
        assert_eq!(parse(&[b'a', b'=', 0xff]), Err(FormError::NotUtf8));
        assert_eq!(parse(b"").unwrap(), vec![]);
    }
}
