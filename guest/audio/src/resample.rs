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
/// Largest precomputed kernel table (weights); odder rate pairs compute
/// the kernel per tap instead.
const MAX_TABLE: usize = 1 << 18;

#[derive(Debug, Clone)]
pub struct Resampler {
    in_rate: u32,
    out_rate: u32,
    /// Input samples still needed, the oldest first.
    history: Vec<f32>,
    /// Position of the next output sample, in units of 1/`out_rate` input
    /// samples from `history[0]`: exact integer arithmetic, so chunking
    /// never changes the result.
    pos: u64,
    /// Normalized kernel weights per output phase (`phases × 2·half`). The
    /// output phases repeat with period out_rate / gcd(in, out): one phase
    /// for 24 or 16 kHz → 8 kHz, 160 for 22.05 kHz. Rebuilt, not stored.
    table: Vec<f32>,
}

/// What a resampler needs to continue a stream mid-chunk exactly as it
/// would have: its rates, the input history the next outputs still reach
/// and the position of the next output (see the fields of [`Resampler`]).
/// Part of the guests' snapshot format: without it a reply resumed after a
/// migration would restart its filter on zeros and click.
#[derive(Debug, Clone, PartialEq)]
pub struct ResamplerState {
    pub in_rate: u32,
    pub out_rate: u32,
    /// Input samples still needed, the oldest first.
    pub history: Vec<f32>,
    /// Position of the next output sample, in 1/`out_rate` input samples
    /// from `history[0]`.
    pub pos: u64,
}

impl Resampler {
    pub fn new(in_rate: u32, out_rate: u32) -> Self {
        assert!(in_rate > 0 && out_rate > 0, "sample rates must be positive");
        let mut r = Self { in_rate, out_rate, history: Vec::new(), pos: 0, table: Vec::new() };
        // Leading zeros so the first output lines up with the first input.
        let half = r.half_width();
        r.history = vec![0.0; half];
        r.pos = half as u64 * out_rate as u64;
        r
    }

    pub fn state(&self) -> ResamplerState {
        ResamplerState { in_rate: self.in_rate, out_rate: self.out_rate, history: self.history.clone(), pos: self.pos }
    }

    /// Refuses a state whose next output would read outside its history,
    /// which [`Resampler::process`] could not survive.
    pub fn from_state(state: ResamplerState) -> Result<Self, String> {
        let ResamplerState { in_rate, out_rate, history, pos } = state;
        if in_rate == 0 || out_rate == 0 {
            return Err(format!("resampler rates {in_rate} → {out_rate} must be positive"));
        }
        let r = Self { in_rate, out_rate, history, pos, table: Vec::new() };
        if in_rate != out_rate {
            // `process` reads the next output's kernel from center + 1 - half,
            // and when no output is due drops the history before that point:
            // both must lie within the history.
            let center = pos / out_rate as u64;
            let half = r.half_width() as u64;
            if center + 1 < half || center + 1 > r.history.len() as u64 + half {
                return Err(format!("resampler position {pos} is outside its {} samples", r.history.len()));
            }
        }
        Ok(r)
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

    /// Output phases before the fractional positions repeat.
    fn phases(&self) -> u64 {
        self.out_rate as u64 / gcd(self.in_rate as u64, self.out_rate as u64)
    }

    /// The normalized weights for an output at `frac` (0..1) past a sample.
    fn weights(&self, frac: f64) -> Vec<f32> {
        let half = self.half_width() as isize;
        let raw: Vec<f64> = ((1 - half)..=half).map(|k| kernel(k as f64 - frac, self.cutoff(), half as f64)).collect();
        let norm: f64 = raw.iter().sum();
        raw.iter().map(|w| if norm > 0.0 { (w / norm) as f32 } else { 0.0 }).collect()
    }

    fn ensure_table(&mut self) {
        let taps = 2 * self.half_width();
        let phases = self.phases();
        if !self.table.is_empty() || phases as usize * taps > MAX_TABLE {
            return;
        }
        let step = self.out_rate as u64 / phases;
        self.table = (0..phases).flat_map(|p| self.weights((p * step) as f64 / self.out_rate as f64)).collect();
    }

    /// Resamples one chunk; may return fewer samples than the ratio suggests
    /// until enough look-ahead has arrived (see [`Resampler::flush`]).
    pub fn process(&mut self, input: &[i16]) -> Vec<i16> {
        if self.in_rate == self.out_rate {
            return input.to_vec();
        }
        self.ensure_table();
        self.history.extend(input.iter().map(|&s| s as f32));
        let half = self.half_width() as isize;
        let taps = 2 * half as usize;
        let out_rate = self.out_rate as u64;
        let phase_step = out_rate / self.phases();
        let mut out = Vec::with_capacity(input.len() * self.out_rate as usize / self.in_rate as usize + 1);
        loop {
            let center = (self.pos / out_rate) as isize;
            if center + half >= self.history.len() as isize {
                break;
            }
            let first = (center + 1 - half) as usize;
            let window = &self.history[first..first + taps];
            let y: f32 = if self.table.is_empty() {
                let weights = self.weights((self.pos % out_rate) as f64 / out_rate as f64);
                weights.iter().zip(window).map(|(w, x)| w * x).sum()
            } else {
                let phase = ((self.pos % out_rate) / phase_step) as usize;
                let weights = &self.table[phase * taps..(phase + 1) * taps];
                weights.iter().zip(window).map(|(w, x)| w * x).sum()
            };
            out.push(y.round().clamp(i16::MIN as f32, i16::MAX as f32) as i16);
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
        let table = std::mem::take(&mut self.table);
        *self = Self::new(self.in_rate, self.out_rate);
        self.table = table;
        out
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
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
