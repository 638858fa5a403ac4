//! The two WAV jobs providers need: wrap PCM16 for an upload, and find the
//! samples inside a WAV a provider returns (Google prefixes its MULAW and
//! LINEAR16 audio with a RIFF header). The reader is our own because
//! `hound` does not read μ-law (format 7).

use super::ProviderError;

/// PCM16 mono as a canonical 44-byte-header WAV (written by `hound`, as
/// the simulator's recordings are).
pub fn pcm16(samples: &[i16], rate: u32) -> Vec<u8> {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut out = std::io::Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    let mut writer = hound::WavWriter::new(&mut out, spec).expect("a WAV header fits in memory");
    for &s in samples {
        writer.write_sample(s).expect("writing to memory");
    }
    writer.finalize().expect("writing to memory");
    out.into_inner()
}

/// The audio of a WAV file.
#[derive(Debug, PartialEq)]
pub struct WavData<'a> {
    /// 1 = PCM, 7 = μ-law.
    pub format: u16,
    pub channels: u16,
    pub rate: u32,
    pub bits: u16,
    pub data: &'a [u8],
}

/// Parses a RIFF/WAVE file, skipping chunks it does not need.
pub fn parse(bytes: &[u8]) -> Result<WavData<'_>, ProviderError> {
    let bad = |why: &str| ProviderError::Protocol(format!("audio is not a WAV file I can read: {why}"));
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad("no RIFF/WAVE header"));
    }
    let mut fmt = None;
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        let body_start = at + 8;
        // Streams of unknown length carry a too-large (often 0xFFFFFFFF) size.
        let body_end = body_start.saturating_add(len).min(bytes.len());
        let body = &bytes[body_start..body_end];
        match id {
            b"fmt " if body.len() >= 16 => {
                let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
                let rate = u32::from_le_bytes(body[4..8].try_into().expect("4 bytes"));
                fmt = Some((u16_at(0), u16_at(2), rate, u16_at(14)));
            }
            b"data" => {
                let (format, channels, rate, bits) = fmt.ok_or_else(|| bad("data before fmt"))?;
                return Ok(WavData { format, channels, rate, bits, data: body });
            }
            _ => {}
        }
        at = body_start.saturating_add(len + (len & 1));
    }
    Err(bad("no data chunk"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_wav_parses_back() {
        let samples = [0i16, 1, -1, i16::MAX, i16::MIN];
        let wav = pcm16(&samples, 16_000);
        assert_eq!(wav.len(), 44 + 10);
        let parsed = parse(&wav).unwrap();
        assert_eq!((parsed.format, parsed.channels, parsed.rate, parsed.bits), (1, 1, 16_000, 16));
        assert_eq!(parsed.data, &wav[44..]);
        assert!(parse(b"RIFF\0\0\0\0WAVE").is_err());
        assert!(parse(&wav[..20]).is_err());
    }
}
