//! The continuing state each streaming type exposes for snapshots: taken
//! mid-stream and restored, it carries on exactly as the original.

use crate::endpoint::{Boundary, EndpointConfig, Endpointer};
use crate::frame::Framer;
use crate::resample::Resampler;
use crate::vad::VadState;
use crate::{FRAME_BYTES, tone};

#[test]
fn tone_is_ms_of_a_sine_at_the_rate() {
    let t = tone(10, 1000.0, 8000, 1000.0);
    assert_eq!(t.len(), 80);
    assert_eq!(&t[..3], &[0, 707, 1000]);
    assert_eq!(tone(1000, 440.0, 22_050, 1.0).len(), 22_050);
}

#[test]
fn a_resampler_restored_mid_stream_continues_exactly() {
    let input = tone(100, 440.0, 22_050, 9000.0);
    let (a, b) = input.split_at(1001);
    let mut whole = Resampler::new(22_050, 8000);
    whole.process(a);
    let mut resumed = Resampler::from_state(whole.state()).unwrap();
    assert_eq!(resumed.state(), whole.state());
    let mut expected = whole.process(b);
    expected.extend(whole.flush());
    let mut got = resumed.process(b);
    got.extend(resumed.flush());
    assert!(!got.is_empty());
    assert_eq!(got, expected);
}

#[test]
fn a_resampler_refuses_a_state_it_cannot_run() {
    let mut state = Resampler::new(24_000, 8000).state();
    state.pos = u64::MAX / 2;
    assert!(Resampler::from_state(state.clone()).is_err());
    state.pos = 0;
    assert!(Resampler::from_state(state.clone()).is_err());
    state.out_rate = 0;
    assert!(Resampler::from_state(state).is_err());
}

#[test]
fn an_endpointer_restored_mid_utterance_continues_exactly() {
    let config = EndpointConfig::default();
    let mut pcm = vec![0; 8000];
    pcm.extend(tone(3000, 300.0, 8000, 8000.0));
    pcm.extend(vec![0; 8000]);
    let mut whole = Endpointer::new(config);
    let frames: Vec<&[i16]> = pcm.chunks(FRAME_BYTES).collect();
    let (before, after) = frames.split_at(60);
    for frame in before {
        whole.push(frame);
    }
    assert!(whole.in_utterance());
    let mut resumed = Endpointer::from_state(config, whole.state()).unwrap();
    assert_eq!(resumed, whole);
    for frame in after {
        assert_eq!(resumed.push(frame), whole.push(frame));
    }
    assert_eq!(resumed, whole);
}

#[test]
fn an_endpointer_restored_while_it_may_look_back_continues_exactly() {
    // A word from the first frame (200 ms, over a quiet line), then the
    // line: the detector finds the word only once the floor falls below it.
    let mut pcm: Vec<i16> = tone(200, 300.0, 8000, 3000.0);
    pcm.extend(crate::vad_cases::fixture("noise-white").iter().take(8000).map(|&s| s / 30));
    let frames: Vec<&[i16]> = pcm.chunks(FRAME_BYTES).collect();
    let ulaw: Vec<u8> = pcm.iter().map(|&s| crate::ulaw::encode(s)).collect();
    let earlier = |i: usize| &ulaw[..i * FRAME_BYTES];
    let config = EndpointConfig::default();
    let mut whole = Endpointer::new(config);
    for (i, frame) in frames[..5].iter().enumerate() {
        assert_eq!(whole.push_after(earlier(i), frame), None, "the word is its own floor so far");
    }
    assert_eq!(whole.lookback_bytes(), 5 * FRAME_BYTES);
    let mut resumed = Endpointer::from_state(config, whole.state()).unwrap();
    assert_eq!(resumed, whole);
    let mut boundaries = Vec::new();
    for (i, frame) in frames.iter().enumerate().skip(5) {
        let b = whole.push_after(earlier(i), frame);
        assert_eq!(resumed.push_after(earlier(i), frame), b);
        boundaries.extend(b);
    }
    assert_eq!(boundaries, [Boundary::SpeechStart { lookback_ms: 200 }, Boundary::EndOfUtterance { speech_ms: 200 }]);
    // Without the audio before it, the same frames never hear the word.
    let mut blind = Endpointer::new(config);
    assert!(frames.iter().all(|frame| blind.push(frame).is_none()));
}

#[test]
fn the_look_back_reaches_the_start_of_the_call_and_ends_after_2_s() {
    let mut ep = Endpointer::new(EndpointConfig::default());
    for i in 0..99 {
        assert_eq!(ep.lookback_bytes(), i * FRAME_BYTES);
        ep.push(&[0; FRAME_BYTES]);
    }
    // The floor's window is full: it has what it needs from here on.
    assert_eq!(ep.lookback_bytes(), 99 * FRAME_BYTES);
    ep.push(&[0; FRAME_BYTES]);
    assert_eq!(ep.lookback_bytes(), 0);
}

#[test]
fn a_vad_refuses_a_block_it_could_not_reach() {
    let state = VadState { block_min: 0.0, block_frames: 25, blocks: [f32::MAX; 4] };
    assert!(crate::vad::Vad::from_state(state).is_err());
}

#[test]
fn a_framer_restored_with_its_carry_continues_exactly() {
    let mut whole = Framer::new();
    assert_eq!(whole.push(&[1; 250]).len(), FRAME_BYTES);
    let mut resumed = Framer::from_carry(whole.carry().to_vec()).unwrap();
    assert_eq!(resumed, whole);
    assert_eq!(resumed.push(&[2; 100]), whole.push(&[2; 100]));
    assert_eq!(resumed.flush(), whole.flush());
    assert!(Framer::from_carry(vec![0; FRAME_BYTES]).is_err());
}

#[test]
fn the_level_of_mu_law_is_the_level_of_its_decoded_samples_to_the_bit() {
    use crate::ulaw;
    use crate::vad::{rms, rms_ulaw};
    let decoded = |codes: &[u8]| codes.iter().map(|&c| ulaw::decode(c)).collect::<Vec<i16>>();
    for code in 0..=255u8 {
        let frame = [code; FRAME_BYTES];
        assert_eq!(rms_ulaw(&frame).to_bits(), rms(&decoded(&frame)).to_bits(), "code {code:#04x}");
    }
    let mixed: Vec<u8> = (0..FRAME_BYTES).map(|i| (i * 37 % 256) as u8).collect();
    assert_eq!(rms_ulaw(&mixed).to_bits(), rms(&decoded(&mixed)).to_bits());
    assert_eq!(rms_ulaw(&[]), 0.0);
}

#[test]
fn an_endpointer_fed_mu_law_decides_as_one_fed_its_decoded_frames() {
    use crate::ulaw;
    let mut cases = crate::vad_cases::cases(10.0);
    cases.extend(crate::vad_cases::noise_alone());
    let mut boundaries = 0;
    for case in cases {
        let codes: Vec<u8> = case.pcm.iter().map(|&s| ulaw::encode(s)).collect();
        let (mut from_pcm, mut from_codes) =
            (Endpointer::new(EndpointConfig::default()), Endpointer::new(EndpointConfig::default()));
        for (i, frame) in codes.chunks_exact(FRAME_BYTES).enumerate() {
            let pcm: Vec<i16> = frame.iter().map(|&c| ulaw::decode(c)).collect();
            let earlier = &codes[..i * FRAME_BYTES];
            let expected = from_pcm.push_after(earlier, &pcm);
            assert_eq!(from_codes.push_ulaw_after(earlier, frame), expected, "{} frame {i}", case.case);
            boundaries += usize::from(expected.is_some());
        }
        assert_eq!(from_codes, from_pcm, "{}", case.case);
    }
    assert!(boundaries > 0, "the cases have utterances to find");
}
