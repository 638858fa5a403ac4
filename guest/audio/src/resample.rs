//! Streaming band-limited resampling to 8 kHz (or any rate), for TTS output
//! at 16, 22.05 or 24 kHz.
//!
//! A windowed-sinc interpolator evaluated at each output instant. It keeps
//! just enough input history to continue seamlessly across chunks, so a
//! reply streamed in odd-sized pieces resamples exactly like one buffer.

use std::f64::consts::PI;

/// Zero crossings of the sinc kernel on each side, at the narrower rate.
const ZERO_CROSSINGS: f64 = 8.0;
/// Passband edge as a fraction of the output Nyquist frequency.
const ROLLOFF: f64 = 0.92;

#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Resampler {
    in_rate: u32,
    out_rate: u32,
    /// Input samples still needed, the oldest first.
    history: Vec<f32>,
    /// Position of the next output sample, in units of 1/`out_rate` input
    /// samples from `history[0]`: exact integer arithmetic, so chunking
    /// never changes the result.
    pos: u64,
}

impl Resampler {
    pub fn new(in_rate: u32, out_rate: u32) -> Self {
        assert!(in_rate > 0 && out_rate > 0, "sample rates must be positive");
        let mut r = Self { in_rate, out_rate, history: Vec::new(), pos: 0 };
        // Leading zeros so the first output lines up with the first input.
        let half = r.half_width();
        r.history = vec![0.0; half];
        r.pos = half as u64 * out_rate as u64;
        r
    }

    pub fn in_rate(&self) -> u32 {
        self.in_rate
    }

    /// Cutoff as a fraction of the input rate.
    fn cutoff(&self) -> f64 {
        0.5 * ROLLOFF * (self.out_rate as f64 / self.in_rate as f64).min(1.0)
    }

    /// Kernel half-width in input samples.
    fn half_width(&self) -> usize {
        (ZERO_CROSSINGS / (2.0 * self.cutoff())).ceil() as usize
    }

    /// Resamples one chunk; may return fewer samples than the ratio suggests
    /// until enough look-ahead has arrived (see [`Resampler::flush`]).
    pub fn process(&mut self, input: &[i16]) -> Vec<i16> {
        if self.in_rate == self.out_rate {
            return input.to_vec();
        }
        self.history.extend(input.iter().map(|&s| s as f32));
        let half = self.half_width() as isize;
        let out_rate = self.out_rate as u64;
        let fc = self.cutoff();
        let mut out = Vec::with_capacity(input.len() * self.out_rate as usize / self.in_rate as usize + 1);
        loop {
            let center = (self.pos / out_rate) as isize;
            if center + half >= self.history.len() as isize {
                break;
            }
            let frac = (self.pos % out_rate) as f64 / out_rate as f64;
            let mut acc = 0.0f64;
            let mut norm = 0.0f64;
            for k in (1 - half)..=half {
                let x = k as f64 - frac;
                let w = kernel(x, fc, half as f64);
                acc += w * self.history[(center + k) as usize] as f64;
                norm += w;
            }
            let y = if norm > 0.0 { acc / norm } else { 0.0 };
            out.push(y.round().clamp(i16::MIN as f64, i16::MAX as f64) as i16);
            self.pos += self.in_rate as u64;
        }
        // Drop input that no future output can reach.
        let keep_from = ((self.pos / out_rate) as isize - half + 1).max(0) as usize;
        self.history.drain(..keep_from);
        self.pos -= keep_from as u64 * out_rate;
        out
    }

    /// Pushes trailing zeros through so the last real samples come out.
    pub fn flush(&mut self) -> Vec<i16> {
        if self.in_rate == self.out_rate {
            return Vec::new();
        }
        let tail = vec![0i16; self.half_width() + 1];
        let out = self.process(&tail);
        *self = Self::new(self.in_rate, self.out_rate);
        out
    }
}

/// Blackman-windowed sinc low-pass, `fc` relative to the input rate.
fn kernel(x: f64, fc: f64, half: f64) -> f64 {
    if x.abs() >= half {
        return 0.0;
    }
    let arg = 2.0 * fc * x;
    let sinc = if arg.abs() < 1e-12 { 1.0 } else { (PI * arg).sin() / (PI * arg) };
    let t = x / half;
    let window = 0.42 + 0.5 * (PI * t).cos() + 0.08 * (2.0 * PI * t).cos();
    sinc * window
}
