//! Guest cost per 20 ms frame: one `media` event through the sandbox into the
//! default guest (μ-law decode + voice detection + turn-taking state), the
//! work done 50 times a second for every live call. Target: ≤ 5 µs median.
//! Measured twice: on one warm session, and round 300 sessions, where each
//! instance's memory has left the caches since its previous frame, as on a
//! busy server.
//!
//! `cargo bench --bench guest_frame`

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use hotline::config::Config;
use hotline::sandbox::wit::{self, Event, Media, Started};
use hotline::sandbox::{Sandbox, SandboxConfig};
use hotline::versions::DEFAULT_GUEST;
use hotline_audio::endpoint::{EndpointConfig, Endpointer};
use hotline_audio::ulaw;

/// A frame of quiet line noise (the common case: nobody is talking).
fn noise_frame(seed: &mut u32) -> Vec<u8> {
    (0..160)
        .map(|_| {
            *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ulaw::encode(((*seed >> 16) as i32 % 200 - 100) as i16)
        })
        .collect()
}

/// Live calls in the round-robin case.
const CALLS: usize = 300;

fn guest_frame(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxConfig { max_instances: CALLS as u32 + 1, ..Config::default().sandbox }).unwrap();
    let guest = sandbox.load(DEFAULT_GUEST).unwrap();
    let mut session = guest.session().unwrap();
    let started = Event::Started(Started {
        stream_sid: "MZbench".into(),
        call_sid: "CAbench".into(),
        custom_parameters: vec![],
        config: wit::Config::from(&Config::default()),
        direction: hotline::sandbox::wit::Direction::Inbound,
        from: "+15550100001".into(),
        to: "+15550100002".into(),
    });
    session.handle(&started).unwrap();
    session.handle(&Event::MarkPlayed("greeting".into())).unwrap();
    let mut seed = 1;
    let frames: Vec<Vec<u8>> = (0..64).map(|_| noise_frame(&mut seed)).collect();
    let mut i = 0u64;
    c.bench_function("guest/media_frame", |b| {
        b.iter_custom(|iters| {
            let began = Instant::now();
            for _ in 0..iters {
                i += 1;
                let payload = frames[(i % 64) as usize].clone();
                let event = Event::Media(Media { payload, timestamp_ms: i * 20 });
                black_box(session.handle(&event).unwrap());
            }
            began.elapsed()
        })
    });

    // The same frame, but round the sessions of many calls, as a busy
    // server runs them: each instance's memory has left the caches since
    // its previous frame, which a single warm session never shows.
    let mut sessions: Vec<_> = (0..CALLS).map(|_| guest.session().unwrap()).collect();
    for session in &mut sessions {
        session.handle(&started).unwrap();
        session.handle(&Event::MarkPlayed("greeting".into())).unwrap();
    }
    c.bench_function(&format!("guest/media_frame_round_{CALLS}_calls"), |b| {
        b.iter_custom(|iters| {
            let began = Instant::now();
            for _ in 0..iters {
                i += 1;
                let payload = frames[(i % 64) as usize].clone();
                let event = Event::Media(Media { payload, timestamp_ms: (i / CALLS as u64) * 20 });
                black_box(sessions[(i % CALLS as u64) as usize].handle(&event).unwrap());
            }
            began.elapsed()
        })
    });
    drop(sessions);

    // The detector's work per frame as the guest does it (the level read
    // from the μ-law codes), natively.
    let mut endpointer = Endpointer::new(EndpointConfig::default());
    c.bench_function("native/vad", |b| {
        b.iter(|| {
            i += 1;
            endpointer.push_ulaw_after::<[u8]>(&[], &frames[(i % 64) as usize])
        })
    });
}

/// TTS audio to the phone: half a second of 24 kHz PCM16 to 8 kHz, the
/// work per `speech-audio` chunk (natively; the guest runs the same code).
fn tts_resample(c: &mut Criterion) {
    let input = hotline_audio::tone(500, 191.0, 24_000, 8000.0);
    c.bench_function("native/resample_500ms_24k_to_8k", |b| {
        b.iter(|| {
            let mut r = hotline_audio::resample::Resampler::new(24_000, 8_000);
            black_box(r.process(black_box(&input)))
        })
    });
}

criterion_group!(benches, guest_frame, tts_resample);
criterion_main!(benches);
