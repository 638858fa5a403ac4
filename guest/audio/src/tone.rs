//! Test and prompt signals.

use std::f64::consts::PI;

/// `ms` milliseconds of a sine at `hz`, sampled at `rate`, peaking at
/// `amplitude` (at most `i16::MAX`).
pub fn tone(ms: u32, hz: f64, rate: u32, amplitude: f64) -> Vec<i16> {
    (0..ms as u64 * rate as u64 / 1000)
        .map(|i| (amplitude * (2.0 * PI * hz * i as f64 / rate as f64).sin()) as i16)
        .collect()
}

/// The load generator's caller, one 2 s cycle at 8 kHz: 1 s of a 440 Hz
/// tone in noise, then 1 s of a near-silent line (`hotline bench` sends it
/// over and over; the voice-detection tests use it too). Seeded, so every
/// call and every test gets the same samples.
pub fn load_caller_cycle() -> Vec<i16> {
    let mut seed = 0x2545_f491_u32;
    let mut noise = move |amplitude: i32| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed % (2 * amplitude as u32 + 1)) as i32 - amplitude
    };
    let tone = tone(1000, 440.0, 8000, 8000.0);
    (0..16_000)
        .map(|i| match tone.get(i) {
            Some(&t) => (t as i32 + noise(500)) as i16,
            None => noise(30) as i16,
        })
        .collect()
}
