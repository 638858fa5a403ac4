//! Example call logic: the default echo agent, plus answers to the keypad.
//!
//! - `1`..`9`: that many short beeps, then a mark `digit-N`
//! - `0`: a low tone, then hang up
//! - `*` / `#`: a rising pair of tones, mark `menu`
//!
//! It shows the pattern for your own guest: a `Wrapper` keeps the default
//! `Machine` for turn-taking, intercepts the events it cares about, and
//! produces effects; `Wrapped` turns it into a whole component.
//! It is pure: the beeps are computed here, and the host plays them.

use hotline_agent::bindings::hotline::call::types::{Effect, Event, LogEntry};
use hotline_agent::{Machine, Wrapped, Wrapper};
use hotline_audio::frame::Framer;

struct Keypad;

impl Wrapper for Keypad {
    fn handle(machine: &mut Machine, event: Event) -> Vec<Effect> {
        match event {
            Event::Dtmf(digit) => answer(digit),
            other => machine.handle(other),
        }
    }
}

fn answer(digit: char) -> Vec<Effect> {
    let log = Effect::Log(LogEntry { event: "dtmf_answer".into(), fields: vec![("digit".into(), digit.to_string())] });
    match digit {
        '1'..='9' => {
            let beeps = digit.to_digit(10).unwrap_or(1) as usize;
            let mut pcm = Vec::new();
            for _ in 0..beeps {
                pcm.extend(tone(880.0, 120));
                pcm.extend(std::iter::repeat_n(0, 8 * 80));
            }
            vec![log, play(&pcm), Effect::Mark(format!("digit-{digit}"))]
        }
        '0' => vec![log, play(&tone(220.0, 400)), Effect::Mark("goodbye".into()), Effect::Hangup],
        _ => {
            let mut pcm = tone(660.0, 150);
            pcm.extend(tone(990.0, 150));
            vec![log, play(&pcm), Effect::Mark("menu".into())]
        }
    }
}

/// PCM16 at 8 kHz, with 5 ms fades so the beeps do not click.
fn tone(hz: f64, ms: usize) -> Vec<i16> {
    let n = ms * 8;
    let fade = 40.0;
    (0..n)
        .map(|i| {
            let envelope = (i as f64 / fade).min((n - i) as f64 / fade).min(1.0);
            (6000.0 * envelope * (2.0 * std::f64::consts::PI * hz * i as f64 / 8000.0).sin()) as i16
        })
        .collect()
}

/// μ-law in whole 20 ms frames, as `play` requires.
fn play(pcm: &[i16]) -> Effect {
    let mut framer = Framer::new();
    let mut audio = framer.push_pcm(pcm);
    audio.extend(framer.flush());
    Effect::Play(audio)
}

type Guest = Wrapped<Keypad>;
hotline_agent::export!(Guest);
