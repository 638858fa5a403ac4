//! Voice detection on real speech in noise: espeak-ng speech and SoX noise
//! (`testdata/`, made by `scripts/make-vad-fixtures.sh`), mixed here at a
//! chosen signal-to-noise ratio, run through the endpointer frame by frame
//! as a call delivers them, utterances counted.
//!
//! `cargo test --release -p hotline-audio vad_table -- --ignored --nocapture`
//! prints every case as a table (the measurements in docs/turn-taking.md).

use std::path::PathBuf;

use crate::endpoint::{Boundary, EndpointConfig, Endpointer};
use crate::{FRAME_BYTES, tone, ulaw};

pub const CLIPS: [&str; 3] = ["hello", "yes", "order"];
pub const NOISES: [&str; 5] = ["white", "pink", "brown", "hum50", "hum60"];
/// Active speech level: -26 dBFS, the nominal level of telephone speech.
const SPEECH_DBFS: f64 = -26.0;

pub fn fixture(name: &str) -> Vec<i16> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(format!("{name}.ulaw"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.iter().map(|&b| ulaw::decode(b)).collect()
}

fn dbfs(db: f64) -> f64 {
    32768.0 * 10f64.powf(db / 20.0)
}

fn rms(pcm: &[i16]) -> f64 {
    (pcm.iter().map(|&s| s as f64 * s as f64).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
}

/// RMS over the 20 ms frames within 30 dB of the loudest: the level of the
/// speech itself, not of the pauses in it.
fn active_rms(pcm: &[i16]) -> f64 {
    let frames: Vec<f64> = pcm.chunks(FRAME_BYTES).map(rms).collect();
    let loudest = frames.iter().copied().fold(0.0, f64::max);
    let active: Vec<f64> = frames.into_iter().filter(|&r| r >= loudest / 31.6).collect();
    (active.iter().map(|r| r * r).sum::<f64>() / active.len() as f64).sqrt()
}

/// One part of a caller's audio, in order.
#[derive(Clone, Copy)]
pub enum Part {
    /// Only the line: the noise (or nothing).
    Quiet(u32),
    /// A clip of speech over the line noise.
    Speech(&'static str),
}

/// Line noise under a whole scene: `kind` at `dbfs` RMS, or digital silence.
#[derive(Clone, Copy)]
pub struct Line {
    pub kind: Option<&'static str>,
    pub dbfs: f64,
}

pub const SILENT_LINE: Line = Line { kind: None, dbfs: f64::NEG_INFINITY };

/// The caller's audio: `parts` over `line`, speech at -26 dBFS, as μ-law
/// decoded (what the guest sees), and how many utterances it holds.
pub fn scene(parts: &[Part], line: Line) -> (Vec<i16>, usize) {
    let mut speech: Vec<f64> = Vec::new();
    let mut expected = 0;
    for part in parts {
        match *part {
            Part::Quiet(ms) => speech.extend(std::iter::repeat_n(0.0, ms as usize * 8)),
            Part::Speech(clip) => {
                let pcm = fixture(&format!("speech-{clip}"));
                let gain = dbfs(SPEECH_DBFS) / active_rms(&pcm);
                speech.extend(pcm.iter().map(|&s| s as f64 * gain));
                expected += 1;
            }
        }
    }
    let noise = match line.kind {
        Some(kind) => {
            let pcm = fixture(&format!("noise-{kind}"));
            let gain = dbfs(line.dbfs) / rms(&pcm);
            looped(&pcm, speech.len()).into_iter().map(|s| s * gain).collect()
        }
        None => vec![0.0; speech.len()],
    };
    let mixed = speech.iter().zip(&noise).map(|(s, n)| (s + n).round().clamp(-32768.0, 32767.0) as i16);
    // Through μ-law and back, as a call carries it.
    (mixed.map(|s| ulaw::decode(ulaw::encode(s))).collect(), expected)
}

/// `pcm` repeated to `len` samples, each seam crossfaded over 20 ms.
fn looped(pcm: &[i16], len: usize) -> Vec<f64> {
    const FADE: usize = 160;
    let mut out: Vec<f64> = Vec::with_capacity(len + pcm.len());
    while out.len() < len {
        if out.is_empty() {
            out.extend(pcm.iter().map(|&s| s as f64));
            continue;
        }
        let start = out.len() - FADE;
        for (i, &s) in pcm[..FADE].iter().enumerate() {
            let w = i as f64 / FADE as f64;
            out[start + i] = out[start + i] * (1.0 - w) + s as f64 * w;
        }
        out.extend(pcm[FADE..].iter().map(|&s| s as f64));
    }
    out.truncate(len);
    out
}

/// The load generator's caller (`host/tools/bench/caller.rs`): 1 s of a 440 Hz
/// tone with noise, 1 s of near-silence, repeated, from the first frame.
pub fn load_pattern(seconds: u32) -> (Vec<i16>, usize) {
    let cycle = crate::load_caller_cycle();
    let pcm: Vec<i16> = cycle.iter().copied().cycle().take(seconds as usize * 8000).collect();
    (pcm.iter().map(|&s| ulaw::decode(ulaw::encode(s))).collect(), seconds as usize / 2)
}

/// A voice detector with its endpointing, as the table drives it.
pub trait Listener {
    /// One 20 ms frame, with the caller's μ-law audio since the last
    /// utterance ended (or the call started) before it.
    fn push(&mut self, frame: &[i16], earlier: &[u8]) -> Option<Boundary>;
}

impl Listener for Endpointer {
    fn push(&mut self, frame: &[i16], earlier: &[u8]) -> Option<Boundary> {
        self.push_after(earlier, frame)
    }
}

/// What a listener made of `pcm`, fed as a call feeds it.
#[derive(Debug, Default)]
pub struct Heard {
    /// Each utterance: (ms of its first voiced frame, ms of its end).
    pub utterances: Vec<(u32, u32)>,
    /// Voiced stretches too short to be an utterance.
    pub noises: usize,
}

pub fn hear(pcm: &[i16]) -> Heard {
    hear_with(&mut Endpointer::new(EndpointConfig::default()), pcm)
}

pub fn hear_with(listener: &mut dyn Listener, pcm: &[i16]) -> Heard {
    let ulaw: Vec<u8> = pcm.iter().map(|&s| ulaw::encode(s)).collect();
    let mut heard = Heard::default();
    let mut start = None;
    let mut since = 0;
    for (i, frame) in pcm.chunks_exact(FRAME_BYTES).enumerate() {
        let at = i as u32 * 20;
        match listener.push(frame, &ulaw[since..i * FRAME_BYTES]) {
            Some(Boundary::SpeechStart { lookback_ms }) => {
                start = Some(at.saturating_sub(lookback_ms));
                // What the guest keeps of it: 200 ms of pre-roll before it.
                let began = (i * FRAME_BYTES).saturating_sub(1600 + lookback_ms as usize * 8);
                since = since.max(began);
            }
            Some(Boundary::EndOfUtterance { .. }) => {
                heard.utterances.push((start.take().unwrap_or(at), at + 20));
                since = (i + 1) * FRAME_BYTES;
            }
            Some(Boundary::Noise) => heard.noises += 1,
            None => {}
        }
    }
    heard
}

/// Every case of the table: (case, line, scene parts or the load pattern).
pub struct Case {
    pub case: &'static str,
    /// The speech clip, or the three of them.
    pub clip: &'static str,
    pub line: Line,
    pub pcm: Vec<i16>,
    pub expected: usize,
}

pub fn line(kind: &'static str, snr_db: f64) -> Line {
    Line { kind: Some(kind), dbfs: SPEECH_DBFS - snr_db }
}

/// The cases, grouped by name; within a group, every clip over every noise.
pub fn cases(snr_db: f64) -> Vec<Case> {
    let mut out = Vec::new();
    for kind in NOISES {
        let line = line(kind, snr_db);
        for clip in CLIPS {
            let speech = Part::Speech(clip);
            let tail = Part::Quiet(1500);
            for (case, parts) in [
                ("speech from the first frame", vec![speech, tail]),
                ("speech 400 ms in (over the greeting)", vec![Part::Quiet(400), speech, tail]),
                ("speech after 12 s of line noise", vec![Part::Quiet(12_000), speech, tail]),
            ] {
                let (pcm, expected) = scene(&parts, line);
                out.push(Case { case, clip, line, pcm, expected });
            }
        }
        let parts = [
            Part::Speech("hello"),
            Part::Quiet(1000),
            Part::Speech("order"),
            Part::Quiet(1000),
            Part::Speech("yes"),
            Part::Quiet(1500),
        ];
        let (pcm, expected) = scene(&parts, line);
        out.push(Case { case: "three utterances from the first frame", clip: "all", line, pcm, expected });
    }
    out
}

/// Steady noise alone, 20 s from the first frame, at these levels.
pub fn noise_alone() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in NOISES {
        for dbfs in [-50.0, -40.0, -30.0, -20.0] {
            let line = Line { kind: Some(kind), dbfs };
            let (pcm, _) = scene(&[Part::Quiet(20_000)], line);
            out.push(Case { case: "steady noise alone, 20 s", clip: "none", line, pcm, expected: 0 });
        }
    }
    out
}

#[test]
#[ignore = "prints the measurements: -- --ignored --nocapture"]
fn vad_table() {
    table(&|| Box::new(Endpointer::new(EndpointConfig::default())));
}

/// Prints the table for the listeners `make` makes (a fresh one per case).
pub fn table(make: &dyn Fn() -> Box<dyn Listener>) {
    println!("| case | line | utterances heard / expected | extra |");
    println!("|---|---|---|---|");
    let mut groups: Vec<(String, usize, usize, usize)> = Vec::new();
    let mut add = |name: String, case: &Case| {
        let h = hear_with(&mut *make(), &case.pcm);
        let heard = h.utterances.len();
        if heard != case.expected && std::env::var_os("VAD_DETAIL").is_some() {
            println!(
                "  {name} [{} {:?} {}]: {:?} noises {}",
                case.clip, case.line.kind, case.line.dbfs, h.utterances, h.noises
            );
        }
        let extra = heard.saturating_sub(case.expected);
        let got = heard.min(case.expected);
        match groups.iter_mut().find(|g| g.0 == name) {
            Some(g) => {
                g.1 += got;
                g.2 += case.expected;
                g.3 += extra;
            }
            None => groups.push((name, got, case.expected, extra)),
        }
    };
    for snr in [20.0, 10.0, 5.0] {
        for case in cases(snr) {
            add(format!("| {} | speech + noise, {snr} dB SNR", case.case), &case);
        }
    }
    for (name, line) in [("digital silence", SILENT_LINE), ("white noise, 30 dB SNR", line("white", 30.0))] {
        let case = "speech from the first frame";
        let (pcm, expected) = scene(&[Part::Speech("hello"), Part::Quiet(1500)], line);
        add(format!("| {case} | {name}"), &Case { case, clip: "hello", line, pcm, expected });
    }
    for case in noise_alone() {
        add(format!("| {} | noise at {} dBFS", case.case, case.line.dbfs), &case);
    }
    let (pcm, expected) = load_pattern(20);
    add(
        "| load generator: 1 s tone+noise / 1 s near-silence | 20 s call".into(),
        &Case { case: "load", clip: "none", line: SILENT_LINE, pcm, expected },
    );
    for (name, got, expected, extra) in groups {
        println!("{name} | {got}/{expected} | {extra} |");
    }
}

// ---- what the detector must hear, and what it must not ------------------

/// Utterances heard in `parts` over `line`, each checked to begin where
/// its speech begins (within `slack` ms) and end after it.
fn heard_as_spoken(parts: &[Part], line: Line) -> Result<Heard, String> {
    let (pcm, expected) = scene(parts, line);
    let heard = hear(&pcm);
    let mut at = 0;
    let mut spans = Vec::new();
    for part in parts {
        match *part {
            Part::Quiet(ms) => at += ms,
            Part::Speech(clip) => {
                let ms = (fixture(&format!("speech-{clip}")).len() / 8) as u32;
                spans.push((at, at + ms));
                at += ms;
            }
        }
    }
    if heard.utterances.len() != expected {
        return Err(format!("{} utterances heard, {expected} spoken: {:?}", heard.utterances.len(), heard.utterances));
    }
    for (&(start, end), &(from, to)) in heard.utterances.iter().zip(&spans) {
        // Speech is heard from its first syllable, or late enough that the
        // 200 ms of pre-roll a guest keeps still holds it; it ends after.
        if start + 120 < from || start > from + 200 || end < to {
            return Err(format!("heard {start}..{end} ms for speech at {from}..{to} ms"));
        }
    }
    Ok(heard)
}

fn each_clip_over_each_noise(snr_db: f64, parts: impl Fn(Part) -> Vec<Part>) {
    let mut failures = Vec::new();
    for kind in NOISES {
        for clip in CLIPS {
            if let Err(e) = heard_as_spoken(&parts(Part::Speech(clip)), line(kind, snr_db)) {
                failures.push(format!("{clip} over {kind} at {snr_db} dB: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn speech_from_the_first_frame_is_heard() {
    // "Yes." alone was its own noise floor: heard only as a click.
    each_clip_over_each_noise(20.0, |speech| vec![speech, Part::Quiet(1500)]);
    heard_as_spoken(&[Part::Speech("yes"), Part::Quiet(1500)], SILENT_LINE).unwrap();
}

#[test]
fn speech_from_the_first_frame_at_10_db_is_heard_as_well_as_later_speech() {
    // At 10 dB the energy detector misses "yes" over a 50 Hz hum wherever
    // it is said; everything else is heard once, from the first frame too.
    for kind in NOISES {
        for clip in CLIPS {
            let count = |parts: &[Part]| hear(&scene(parts, line(kind, 10.0)).0).utterances.len();
            let first = count(&[Part::Speech(clip), Part::Quiet(1500)]);
            let later = count(&[Part::Quiet(400), Part::Speech(clip), Part::Quiet(1500)]);
            assert_eq!(first, later, "{clip} over {kind}: heard from the first frame and 400 ms in");
            assert!(first == 1 || (clip, kind) == ("yes", "hum50"), "{clip} over {kind}: {first} utterances");
        }
    }
}

#[test]
fn speech_over_the_greeting_is_heard() {
    each_clip_over_each_noise(20.0, |speech| vec![Part::Quiet(400), speech, Part::Quiet(1500)]);
}

#[test]
fn speech_after_long_silence_is_heard() {
    each_clip_over_each_noise(20.0, |speech| vec![Part::Quiet(12_000), speech, Part::Quiet(1500)]);
    heard_as_spoken(&[Part::Quiet(12_000), Part::Speech("yes"), Part::Quiet(1500)], SILENT_LINE).unwrap();
}

#[test]
fn three_utterances_from_the_first_frame_are_three() {
    let parts = [
        Part::Speech("hello"),
        Part::Quiet(1000),
        Part::Speech("yes"),
        Part::Quiet(1000),
        Part::Speech("order"),
        Part::Quiet(1500),
    ];
    for kind in NOISES {
        heard_as_spoken(&parts, line(kind, 20.0)).unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}

#[test]
fn steady_noise_alone_is_never_speech() {
    for case in noise_alone() {
        let heard = hear(&case.pcm);
        let what = format!("{:?} at {} dBFS", case.line.kind, case.line.dbfs);
        assert!(heard.utterances.is_empty() && heard.noises == 0, "{what}: {heard:?}");
    }
}

#[test]
fn the_load_generators_first_burst_is_heard() {
    let (pcm, expected) = load_pattern(20);
    let heard = hear(&pcm);
    assert_eq!(heard.utterances.len(), expected, "{heard:?}");
    for (i, &(start, end)) in heard.utterances.iter().enumerate() {
        let burst = i as u32 * 2000;
        assert!(start <= burst + 20 && end > burst + 1000, "burst {i} at {burst} ms heard {start}..{end} ms");
    }
}

#[test]
fn a_click_at_the_first_frame_is_not_an_utterance() {
    // 60 ms of loud audio, then the line: too little to be speech.
    let mut pcm = tone(60, 440.0, 8000, 8000.0);
    pcm.extend(vec![0; 8000]);
    let heard = hear(&pcm);
    assert!(heard.utterances.is_empty(), "{heard:?}");
}

#[test]
fn a_steady_sound_longer_than_the_window_is_the_floor_even_when_it_stops() {
    // Hum from the first frame for 3 s, then a quiet line: by the time it
    // stops the floor has a whole window of it, as for any steady noise.
    let (hum, _) = scene(&[Part::Quiet(3000)], Line { kind: Some("hum60"), dbfs: -30.0 });
    let mut pcm = hum;
    pcm.extend(vec![0; 16_000]);
    let heard = hear(&pcm);
    assert!(heard.utterances.is_empty() && heard.noises == 0, "{heard:?}");
    // The same hum for 1 s is a sound that stopped: heard, from its start.
    let (mut short, _) = scene(&[Part::Quiet(1000)], Line { kind: Some("hum60"), dbfs: -30.0 });
    short.extend(vec![0; 16_000]);
    let heard = hear(&short);
    assert!(heard.utterances.len() == 1 && heard.utterances[0].0 == 0, "{heard:?}");
}
