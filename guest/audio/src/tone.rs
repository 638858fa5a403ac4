//! Test and prompt signals.

use std::f64::consts::PI;

/// `ms` milliseconds of a sine at `hz`, sampled at `rate`, peaking at
/// `amplitude` (at most `i16::MAX`).
pub fn tone(ms: u32, hz: f64, rate: u32, amplitude: f64) -> Vec<i16> {
    (0..ms as u64 * rate as u64 / 1000)
        .map(|i| (amplitude * (2.0 * PI * hz * i as f64 / rate as f64).sin()) as i16)
        .collect()
}
