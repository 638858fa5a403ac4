//! WAV in (any common rate, width and channel count → 8 kHz mono PCM16)
//! and the stereo call recording out.

use std::path::Path;

use anyhow::{Context, bail};
use hotline_audio::resample::Resampler;
use hotline_audio::{SAMPLE_RATE, ulaw};

/// Reads a WAV file as 8 kHz mono PCM16.
pub fn read_8k_mono(path: &Path) -> anyhow::Result<Vec<i16>> {
    let reader = hound::WavReader::open(path).with_context(|| format!("opening {}", path.display()))?;
    let spec = reader.spec();
    let channels = spec.channels.max(1) as usize;
    let samples: Vec<i32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader
            .into_samples::<f32>()
            .map(|s| s.map(|v| (v.clamp(-1.0, 1.0) * 32767.0) as i32))
            .collect::<Result<_, _>>()?,
        (hound::SampleFormat::Int, bits @ 8..=32) => {
            let shift = bits as i32 - 16;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| if shift >= 0 { v >> shift } else { v << -shift }))
                .collect::<Result<_, _>>()?
        }
        (format, bits) => bail!("unsupported WAV sample format {format:?} with {bits} bits"),
    };
    let mono: Vec<i16> = samples
        .chunks(channels)
        .map(|frame| (frame.iter().sum::<i32>() / frame.len() as i32).clamp(i16::MIN as i32, i16::MAX as i32) as i16)
        .collect();
    let mut resampler = Resampler::new(spec.sample_rate, SAMPLE_RATE);
    let mut out = resampler.process(&mono);
    out.extend(resampler.flush());
    Ok(out)
}

/// Writes the call: caller on the left, what the agent played on the right.
pub fn write_stereo(path: &Path, caller: &[u8], agent: &[u8]) -> anyhow::Result<()> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).with_context(|| format!("creating {}", path.display()))?;
    for i in 0..caller.len().max(agent.len()) {
        let left = caller.get(i).map_or(0, |&c| ulaw::decode(c));
        let right = agent.get(i).map_or(0, |&c| ulaw::decode(c));
        writer.write_sample(left)?;
        writer.write_sample(right)?;
    }
    writer.finalize()?;
    Ok(())
}
