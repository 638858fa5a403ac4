//! G.711 μ-law (PCMU), the segment/mantissa form of the ITU-T reference.

const BIAS: i32 = 0x84;
/// Largest 14-bit magnitude the encoder represents.
const CLIP_14: i32 = 8159;

/// The μ-law code for silence (a decoded 0).
pub const SILENCE: u8 = 0xFF;

/// Encodes one linear PCM16 sample, exactly as the ITU-T G.191 reference
/// encoder does: on the top 14 bits, biased, by segment and mantissa.
pub fn encode(sample: i16) -> u8 {
    let mut v = (sample >> 2) as i32;
    let mask = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    v = v.min(CLIP_14) + (BIAS >> 2);
    // Segment = how far the highest set bit sits above bit 5.
    let segment = (32 - (v as u32).leading_zeros() as i32 - 6).max(0);
    if segment >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let code = (segment << 4) | ((v >> (segment + 1)) & 0x0F);
    (code ^ mask) as u8
}

const fn decode_slow(code: u8) -> i16 {
    let c = !code;
    let exponent = ((c >> 4) & 0x07) as i32;
    let mantissa = (c & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if c & 0x80 != 0 { -magnitude as i16 } else { magnitude as i16 }
}

const DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = decode_slow(i as u8);
        i += 1;
    }
    table
};

/// Decodes one μ-law code to linear PCM16.
#[inline]
pub fn decode(code: u8) -> i16 {
    DECODE[code as usize]
}

/// Each code's decoded sample, squared: a frame's energy without decoding it.
const SQUARE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let s = DECODE[i] as i32;
        table[i] = (s * s) as u32;
        i += 1;
    }
    table
};

/// The sum of the squared samples `codes` decode to (what
/// [`crate::vad::rms`] sums), read from a table: the voice detector's
/// per-frame work, with no decoded frame to write and read back.
pub fn energy(codes: &[u8]) -> u64 {
    codes.iter().map(|&c| u64::from(square(c))).sum()
}

/// One code's decoded sample, squared.
#[inline]
pub fn square(code: u8) -> u32 {
    SQUARE[code as usize]
}

pub fn decode_into(codes: &[u8], out: &mut Vec<i16>) {
    out.extend(codes.iter().map(|&c| decode(c)));
}

pub fn encode_into(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| encode(s)));
}
