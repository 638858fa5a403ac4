//! The shared audio crate (`guest/audio`): μ-law against the G.711
//! reference, framing, resampling, voice detection and end of utterance.

use hotline_audio::endpoint::{Boundary, EndpointConfig, Endpointer};
use hotline_audio::frame::Framer;
use hotline_audio::resample::Resampler;
use hotline_audio::vad::Vad;
use hotline_audio::{FRAME_BYTES, ulaw};
use std::f64::consts::PI;

/// ITU-T G.711 μ-law decoding of every code, as produced by an independent
/// implementation (CPython's audioop.ulaw2lin), not by this crate.
const REFERENCE_DECODE: [i16; 256] = [
    -32124, -31100, -30076, -29052, -28028, -27004, -25980, -24956, -23932, -22908, -21884, -20860, -19836, -18812,
    -17788, -16764, -15996, -15484, -14972, -14460, -13948, -13436, -12924, -12412, -11900, -11388, -10876, -10364,
    -9852, -9340, -8828, -8316, -7932, -7676, -7420, -7164, -6908, -6652, -6396, -6140, -5884, -5628, -5372, -5116,
    -4860, -4604, -4348, -4092, -3900, -3772, -3644, -3516, -3388, -3260, -3132, -3004, -2876, -2748, -2620, -2492,
    -2364, -2236, -2108, -1980, -1884, -1820, -1756, -1692, -1628, -1564, -1500, -1436, -1372, -1308, -1244, -1180,
    -1116, -1052, -988, -924, -876, -844, -812, -780, -748, -716, -684, -652, -620, -588, -556, -524, -492, -460, -428,
    -396, -372, -356, -340, -324, -308, -292, -276, -260, -244, -228, -212, -196, -180, -164, -148, -132, -120, -112,
    -104, -96, -88, -80, -72, -64, -56, -48, -40, -32, -24, -16, -8, 0, 32124, 31100, 30076, 29052, 28028, 27004,
    25980, 24956, 23932, 22908, 21884, 20860, 19836, 18812, 17788, 16764, 15996, 15484, 14972, 14460, 13948, 13436,
    12924, 12412, 11900, 11388, 10876, 10364, 9852, 9340, 8828, 8316, 7932, 7676, 7420, 7164, 6908, 6652, 6396, 6140,
    5884, 5628, 5372, 5116, 4860, 4604, 4348, 4092, 3900, 3772, 3644, 3516, 3388, 3260, 3132, 3004, 2876, 2748, 2620,
    2492, 2364, 2236, 2108, 1980, 1884, 1820, 1756, 1692, 1628, 1564, 1500, 1436, 1372, 1308, 1244, 1180, 1116, 1052,
    988, 924, 876, 844, 812, 780, 748, 716, 684, 652, 620, 588, 556, 524, 492, 460, 428, 396, 372, 356, 340, 324, 308,
    292, 276, 260, 244, 228, 212, 196, 180, 164, 148, 132, 120, 112, 104, 96, 88, 80, 72, 64, 56, 48, 40, 32, 24, 16,
    8, 0,
];

/// Where CPython's audioop.lin2ulaw (an independent G.711 encoder) moves to
/// the next code, walking every sample from -32768 up: the whole reference
/// encoder, as (first sample, code) steps.
const REFERENCE_ENCODE_STEPS: &[(i16, u8)] = &[
    (-32768, 0x00),
    (-31608, 0x01),
    (-30584, 0x02),
    (-29560, 0x03),
    (-28536, 0x04),
    (-27512, 0x05),
    (-26488, 0x06),
    (-25464, 0x07),
    (-24440, 0x08),
    (-23416, 0x09),
    (-22392, 0x0a),
    (-21368, 0x0b),
    (-20344, 0x0c),
    (-19320, 0x0d),
    (-18296, 0x0e),
    (-17272, 0x0f),
    (-16248, 0x10),
    (-15736, 0x11),
    (-15224, 0x12),
    (-14712, 0x13),
    (-14200, 0x14),
    (-13688, 0x15),
    (-13176, 0x16),
    (-12664, 0x17),
    (-12152, 0x18),
    (-11640, 0x19),
    (-11128, 0x1a),
    (-10616, 0x1b),
    (-10104, 0x1c),
    (-9592, 0x1d),
    (-9080, 0x1e),
    (-8568, 0x1f),
    (-8056, 0x20),
    (-7800, 0x21),
    (-7544, 0x22),
    (-7288, 0x23),
    (-7032, 0x24),
    (-6776, 0x25),
    (-6520, 0x26),
    (-6264, 0x27),
    (-6008, 0x28),
    (-5752, 0x29),
    (-5496, 0x2a),
    (-5240, 0x2b),
    (-4984, 0x2c),
    (-4728, 0x2d),
    (-4472, 0x2e),
    (-4216, 0x2f),
    (-3960, 0x30),
    (-3832, 0x31),
    (-3704, 0x32),
    (-3576, 0x33),
    (-3448, 0x34),
    (-3320, 0x35),
    (-3192, 0x36),
    (-3064, 0x37),
    (-2936, 0x38),
    (-2808, 0x39),
    (-2680, 0x3a),
    (-2552, 0x3b),
    (-2424, 0x3c),
    (-2296, 0x3d),
    (-2168, 0x3e),
    (-2040, 0x3f),
    (-1912, 0x40),
    (-1848, 0x41),
    (-1784, 0x42),
    (-1720, 0x43),
    (-1656, 0x44),
    (-1592, 0x45),
    (-1528, 0x46),
    (-1464, 0x47),
    (-1400, 0x48),
    (-1336, 0x49),
    (-1272, 0x4a),
    (-1208, 0x4b),
    (-1144, 0x4c),
    (-1080, 0x4d),
    (-1016, 0x4e),
    (-952, 0x4f),
    (-888, 0x50),
    (-856, 0x51),
    (-824, 0x52),
    (-792, 0x53),
    (-760, 0x54),
    (-728, 0x55),
    (-696, 0x56),
    (-664, 0x57),
    (-632, 0x58),
    (-600, 0x59),
    (-568, 0x5a),
    (-536, 0x5b),
    (-504, 0x5c),
    (-472, 0x5d),
    (-440, 0x5e),
    (-408, 0x5f),
    (-376, 0x60),
    (-360, 0x61),
    (-344, 0x62),
    (-328, 0x63),
    (-312, 0x64),
    (-296, 0x65),
    (-280, 0x66),
    (-264, 0x67),
    (-248, 0x68),
    (-232, 0x69),
    (-216, 0x6a),
    (-200, 0x6b),
    (-184, 0x6c),
    (-168, 0x6d),
    (-152, 0x6e),
    (-136, 0x6f),
    (-120, 0x70),
    (-112, 0x71),
    (-104, 0x72),
    (-96, 0x73),
    (-88, 0x74),
    (-80, 0x75),
    (-72, 0x76),
    (-64, 0x77),
    (-56, 0x78),
    (-48, 0x79),
    (-40, 0x7a),
    (-32, 0x7b),
    (-24, 0x7c),
    (-16, 0x7d),
    (-8, 0x7e),
    (0, 0xff),
    (4, 0xfe),
    (12, 0xfd),
    (20, 0xfc),
    (28, 0xfb),
    (36, 0xfa),
    (44, 0xf9),
    (52, 0xf8),
    (60, 0xf7),
    (68, 0xf6),
    (76, 0xf5),
    (84, 0xf4),
    (92, 0xf3),
    (100, 0xf2),
    (108, 0xf1),
    (116, 0xf0),
    (124, 0xef),
    (140, 0xee),
    (156, 0xed),
    (172, 0xec),
    (188, 0xeb),
    (204, 0xea),
    (220, 0xe9),
    (236, 0xe8),
    (252, 0xe7),
    (268, 0xe6),
    (284, 0xe5),
    (300, 0xe4),
    (316, 0xe3),
    (332, 0xe2),
    (348, 0xe1),
    (364, 0xe0),
    (380, 0xdf),
    (412, 0xde),
    (444, 0xdd),
    (476, 0xdc),
    (508, 0xdb),
    (540, 0xda),
    (572, 0xd9),
    (604, 0xd8),
    (636, 0xd7),
    (668, 0xd6),
    (700, 0xd5),
    (732, 0xd4),
    (764, 0xd3),
    (796, 0xd2),
    (828, 0xd1),
    (860, 0xd0),
    (892, 0xcf),
    (956, 0xce),
    (1020, 0xcd),
    (1084, 0xcc),
    (1148, 0xcb),
    (1212, 0xca),
    (1276, 0xc9),
    (1340, 0xc8),
    (1404, 0xc7),
    (1468, 0xc6),
    (1532, 0xc5),
    (1596, 0xc4),
    (1660, 0xc3),
    (1724, 0xc2),
    (1788, 0xc1),
    (1852, 0xc0),
    (1916, 0xbf),
    (2044, 0xbe),
    (2172, 0xbd),
    (2300, 0xbc),
    (2428, 0xbb),
    (2556, 0xba),
    (2684, 0xb9),
    (2812, 0xb8),
    (2940, 0xb7),
    (3068, 0xb6),
    (3196, 0xb5),
    (3324, 0xb4),
    (3452, 0xb3),
    (3580, 0xb2),
    (3708, 0xb1),
    (3836, 0xb0),
    (3964, 0xaf),
    (4220, 0xae),
    (4476, 0xad),
    (4732, 0xac),
    (4988, 0xab),
    (5244, 0xaa),
    (5500, 0xa9),
    (5756, 0xa8),
    (6012, 0xa7),
    (6268, 0xa6),
    (6524, 0xa5),
    (6780, 0xa4),
    (7036, 0xa3),
    (7292, 0xa2),
    (7548, 0xa1),
    (7804, 0xa0),
    (8060, 0x9f),
    (8572, 0x9e),
    (9084, 0x9d),
    (9596, 0x9c),
    (10108, 0x9b),
    (10620, 0x9a),
    (11132, 0x99),
    (11644, 0x98),
    (12156, 0x97),
    (12668, 0x96),
    (13180, 0x95),
    (13692, 0x94),
    (14204, 0x93),
    (14716, 0x92),
    (15228, 0x91),
    (15740, 0x90),
    (16252, 0x8f),
    (17276, 0x8e),
    (18300, 0x8d),
    (19324, 0x8c),
    (20348, 0x8b),
    (21372, 0x8a),
    (22396, 0x89),
    (23420, 0x88),
    (24444, 0x87),
    (25468, 0x86),
    (26492, 0x85),
    (27516, 0x84),
    (28540, 0x83),
    (29564, 0x82),
    (30588, 0x81),
    (31612, 0x80),
];

#[test]
fn ulaw_decodes_every_code_like_the_reference() {
    for code in 0..=255u8 {
        assert_eq!(ulaw::decode(code), REFERENCE_DECODE[code as usize], "code {code:#04x}");
    }
}

#[test]
fn ulaw_encodes_every_sample_like_the_reference() {
    let mut steps = REFERENCE_ENCODE_STEPS.iter().peekable();
    let mut code = 0;
    for s in i16::MIN..=i16::MAX {
        while let Some(&&(first, c)) = steps.peek() {
            if first > s {
                break;
            }
            code = c;
            steps.next();
        }
        assert_eq!(ulaw::encode(s), code, "sample {s}");
    }
}

// ---- ulaw ----
#[test]
fn ulaw_every_code_survives_a_round_trip() {
    for code in 0..=255u8 {
        let back = ulaw::encode(ulaw::decode(code));
        // 0x7F is "negative zero": it decodes to 0, which encodes as 0xFF.
        let expected = if code == 0x7F { 0xFF } else { code };
        assert_eq!(back, expected, "code {code:#04x}");
    }
}

// ---- frame ----
#[test]
fn odd_chunks_become_whole_frames_in_order() {
    let input: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let mut framer = Framer::new();
    let mut out = Vec::new();
    for chunk in input.chunks(37) {
        let frames = framer.push(chunk);
        assert_eq!(frames.len() % FRAME_BYTES, 0);
        out.extend(frames);
    }
    assert_eq!(out.len(), 960);
    assert_eq!(framer.pending(), 40);
    let tail = framer.flush();
    assert_eq!(tail.len(), FRAME_BYTES);
    out.extend(tail);
    assert_eq!(&out[..1000], &input[..]);
    assert!(out[1000..].iter().all(|&b| b == ulaw::SILENCE));
    assert!(framer.flush().is_empty());
}

// ---- resample ----

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Correlation against a reference sine of `freq` at 8 kHz: the amplitude
/// of that frequency component.
fn amplitude_at(x: &[i16], freq: f64) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for (i, &v) in x.iter().enumerate() {
        let ph = 2.0 * PI * freq * i as f64 / 8000.0;
        s += v as f64 * ph.sin();
        c += v as f64 * ph.cos();
    }
    2.0 * (s * s + c * c).sqrt() / x.len() as f64
}

#[test]
fn common_tts_rates_keep_a_voice_band_tone() {
    for rate in [8000, 16000, 22050, 24000, 44100, 48000] {
        let input = hotline_audio::tone(1000, 440.0, rate, 10000.0);
        let mut r = Resampler::new(rate, 8000);
        let mut out = Vec::new();
        for chunk in input.chunks(333) {
            out.extend(r.process(chunk));
        }
        out.extend(r.flush());
        let expected = 8000usize;
        assert!(out.len().abs_diff(expected) <= 2, "{rate}: {} samples", out.len());
        // Skip the edges, where the kernel sees the zero padding.
        let body = &out[200..7800];
        let amp = amplitude_at(body, 440.0);
        assert!((amp - 10000.0).abs() < 150.0, "{rate}: amplitude {amp}");
    }
}

#[test]
fn content_above_the_new_nyquist_is_removed() {
    let input = hotline_audio::tone(1000, 6000.0, 24000, 10000.0);
    let mut r = Resampler::new(24000, 8000);
    let out = r.process(&input);
    assert!(rms(&out[200..out.len() - 200]) < 200.0, "aliasing: rms {}", rms(&out));
}

#[test]
fn chunking_does_not_change_the_output() {
    let input = hotline_audio::tone(500, 1000.0, 22050, 8000.0);
    let mut whole = Resampler::new(22050, 8000);
    let mut a = whole.process(&input);
    a.extend(whole.flush());
    let mut pieces = Resampler::new(22050, 8000);
    let mut b = Vec::new();
    for chunk in input.chunks(97) {
        b.extend(pieces.process(chunk));
    }
    b.extend(pieces.flush());
    assert_eq!(a, b);
}

// ---- vad ----
fn noise(amp: f32, n: usize, seed: &mut u32) -> Vec<i16> {
    (0..n)
        .map(|_| {
            *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (((*seed >> 16) as f32 / 32768.0 - 1.0) * amp) as i16
        })
        .collect()
}

#[test]
fn steady_line_noise_is_learned_as_silence_and_speech_stands_out() {
    let mut vad = Vad::default();
    let mut seed = 7;
    // Loud line noise (~ -36 dBFS RMS) would pass a fixed threshold.
    let flagged = (0..150).filter(|_| vad.is_speech(&noise(900.0, 160, &mut seed))).count();
    assert_eq!(flagged, 0, "steady noise taken for speech; floor {}", vad.noise_floor());
    assert!(vad.noise_floor() > 400.0, "floor {} did not learn the noise", vad.noise_floor());
    assert!(vad.is_speech(&noise(8000.0, 160, &mut seed)));
    // After the noise stops, the floor follows it down within the window.
    for _ in 0..150 {
        vad.is_speech(&noise(30.0, 160, &mut seed));
    }
    assert!(vad.is_speech(&noise(1500.0, 160, &mut seed)), "floor {}", vad.noise_floor());
}

#[test]
fn digital_silence_is_not_speech() {
    let mut vad = Vad::default();
    assert!(!vad.is_speech(&[0; 160]));
    assert!(!vad.is_speech(&[100; 160]));
}

// ---- endpoint ----
const LOUD: [i16; 160] = [6000; 160];
const QUIET: [i16; 160] = [0; 160];

#[test]
fn eou_fires_after_exactly_the_configured_silence() {
    let mut ep = Endpointer::new(EndpointConfig { eou_silence_ms: 500, min_speech_ms: 100 });
    // A call starts with line silence; the floor learns it.
    for _ in 0..5 {
        assert_eq!(ep.push(&QUIET), None);
    }
    assert_eq!(ep.push(&LOUD), Some(Boundary::SpeechStart { lookback_ms: 0 }));
    for _ in 0..9 {
        assert_eq!(ep.push(&LOUD), None);
    }
    for _ in 0..24 {
        assert_eq!(ep.push(&QUIET), None);
    }
    assert_eq!(ep.push(&QUIET), Some(Boundary::EndOfUtterance { speech_ms: 200 }));
    assert!(!ep.in_utterance());
}

#[test]
fn a_click_is_noise() {
    let mut ep = Endpointer::new(EndpointConfig::default());
    ep.push(&QUIET);
    assert_eq!(ep.push(&LOUD), Some(Boundary::SpeechStart { lookback_ms: 0 }));
    let ends: Vec<_> = (0..25).filter_map(|_| ep.push(&QUIET)).collect();
    assert_eq!(ends, vec![Boundary::Noise]);
}
