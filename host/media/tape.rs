//! The call's recording as it is made (`HOTLINE_RECORD_AUDIO`): the
//! caller's audio and what the agent played, lined up on the media clock,
//! handed to the store's recording writer a few seconds at a time.
//!
//! The caller's track is the clock: its end is "now". Agent audio is laid
//! from now on (or after what is still queued to play, as Twilio plays it
//! in order); a clear drops what had not played by then. What is handed
//! over is what lies before now, so agent audio still queued can yet be
//! cleared. `Tape` is plain data and arithmetic; the `Call` methods below
//! are its only contact with the call.

use hotline_audio::SAMPLE_RATE;
use hotline_audio::ulaw::SILENCE;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Call;
use crate::store::record::RecordingRef;
use crate::store::recordings::Recording;

/// Audio handed over at a time (5 s): what a recorded call holds.
const CHUNK_SAMPLES: usize = 5 * SAMPLE_RATE as usize;
/// A caller timestamp further ahead than this (60 s) is not believed: the
/// track goes on from where it is instead of filling the gap with silence
/// (a peer's wild timestamp must not allocate gigabytes).
const MAX_GAP_SAMPLES: usize = 60 * SAMPLE_RATE as usize;

#[derive(Default)]
pub struct Tape {
    /// Samples handed over already: where `caller[0]` and `agent[0]` are.
    start: u64,
    caller: Vec<u8>,
    /// May run past the caller's end: queued, not yet played.
    agent: Vec<u8>,
}

impl Tape {
    /// A caller frame at its media timestamp.
    pub fn caller(&mut self, timestamp_ms: u64, payload: &[u8]) {
        let Some(at) = (timestamp_ms.saturating_mul(u64::from(SAMPLE_RATE)) / 1000).checked_sub(self.start) else {
            return; // before what was handed over: too late to place
        };
        let mut at = at as usize;
        if at > self.caller.len() + MAX_GAP_SAMPLES {
            at = self.caller.len();
        }
        if at > self.caller.len() {
            self.caller.resize(at, SILENCE);
        }
        let overlap = (self.caller.len() - at).min(payload.len());
        self.caller[at..at + overlap].copy_from_slice(&payload[..overlap]);
        self.caller.extend_from_slice(&payload[overlap..]);
    }

    /// Agent audio sent now: it plays after what is still queued.
    pub fn agent(&mut self, audio: &[u8]) {
        if self.agent.len() < self.caller.len() {
            self.agent.resize(self.caller.len(), SILENCE);
        }
        self.agent.extend_from_slice(audio);
    }

    /// A clear: agent audio not played by now never will be.
    pub fn clear(&mut self) {
        self.agent.truncate(self.caller.len());
    }

    /// Interleaved μ-law (caller, agent, …) of what lies before now, once
    /// that is at least `min` samples; what is after now stays.
    pub fn take(&mut self, min: usize) -> Option<Vec<u8>> {
        let n = self.caller.len();
        if n < min.max(1) {
            return None;
        }
        let mut out = Vec::with_capacity(2 * n);
        for (i, &caller) in self.caller.iter().enumerate() {
            out.push(caller);
            out.push(self.agent.get(i).copied().unwrap_or(SILENCE));
        }
        self.caller.clear();
        self.agent.drain(..n.min(self.agent.len()));
        self.start += n as u64;
        Some(out)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Call<S> {
    /// The call started: its recording begins, if recordings are on.
    pub(super) fn tape_start(&mut self, call_sid: &str) {
        let Some(recordings) = self.calls.records.recordings() else { return };
        // A record resumed after a transfer keeps its one recording.
        let earlier = self.record.as_deref().and_then(|r| r.recording());
        let recording = match earlier {
            Some(earlier) => recordings.resume(earlier),
            None => recordings.open(call_sid),
        };
        if let Some(recording) = recording {
            self.tape = Some(Box::new((Tape::default(), recording)));
        }
    }

    pub(super) fn tape_caller(&mut self, timestamp_ms: u64, payload: &[u8]) {
        let Some((tape, recording)) = self.tape.as_deref_mut() else { return };
        tape.caller(timestamp_ms, payload);
        if let Some(chunk) = tape.take(CHUNK_SAMPLES)
            && let Some(recordings) = self.calls.records.recordings()
        {
            recordings.append(recording, chunk);
        }
    }

    pub(super) fn tape_agent(&mut self, audio: &[u8]) {
        if let Some((tape, _)) = self.tape.as_deref_mut() {
            tape.agent(audio);
        }
    }

    pub(super) fn tape_clear(&mut self) {
        if let Some((tape, _)) = self.tape.as_deref_mut() {
            tape.clear();
        }
    }

    /// The call ended: the rest goes to the writer; the record's link.
    pub(super) fn tape_end(&mut self) -> Option<RecordingRef> {
        let (mut tape, mut recording): (Tape, Recording) = *self.tape.take()?;
        let recordings = self.calls.records.recordings()?;
        if let Some(chunk) = tape.take(1) {
            recordings.append(&mut recording, chunk);
        }
        Some(RecordingRef {
            name: recording.name.clone(),
            bytes: recording.bytes() as i64,
            duration_ms: recording.duration_ms() as i64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u8 = 0x10;
    const B: u8 = 0x20;

    /// Interleaved μ-law split back into (caller, agent).
    fn split(interleaved: &[u8]) -> (Vec<u8>, Vec<u8>) {
        (interleaved.iter().step_by(2).copied().collect(), interleaved.iter().skip(1).step_by(2).copied().collect())
    }

    #[test]
    fn agent_audio_plays_from_now_after_what_is_queued() {
        let mut tape = Tape::default();
        tape.caller(0, &[A; 160]);
        tape.agent(&[B; 240]); // plays from 160 to 400
        tape.agent(&[B; 80]); // then 400 to 480
        tape.caller(20, &[A; 160]);
        tape.caller(40, &[A; 160]);
        tape.caller(60, &[A; 160]);
        let (caller, agent) = split(&tape.take(1).unwrap());
        assert_eq!(caller, [A; 640]);
        assert_eq!(agent[..160], [SILENCE; 160]);
        assert_eq!(agent[160..480], [B; 320]);
        assert_eq!(agent[480..], [SILENCE; 160]);
    }

    #[test]
    fn a_clear_drops_what_had_not_played_and_only_that() {
        let mut tape = Tape::default();
        tape.caller(0, &[A; 160]);
        tape.agent(&[B; 800]); // 160..960
        tape.caller(20, &[A; 160]); // now 320: 160 samples played
        tape.clear();
        tape.caller(40, &[A; 160]);
        let (_, agent) = split(&tape.take(1).unwrap());
        assert_eq!(agent[160..320], [B; 160]);
        assert_eq!(agent[320..], [SILENCE; 160]);
    }

    #[test]
    fn only_what_lies_before_now_is_taken_and_the_rest_waits() {
        let mut tape = Tape::default();
        tape.caller(0, &[A; 160]);
        assert!(tape.take(320).is_none(), "less than asked");
        tape.agent(&[B; 400]); // 160..560: 240 still queued after `take`
        tape.caller(20, &[A; 160]);
        assert_eq!(tape.take(320).unwrap().len(), 640);
        tape.caller(40, &[A; 160]);
        tape.caller(60, &[A; 160]);
        tape.caller(80, &[A; 160]);
        let (caller, agent) = split(&tape.take(1).unwrap());
        assert_eq!((caller.len(), &agent[..240], &agent[240..]), (480, &[B; 240][..], &[SILENCE; 240][..]));
    }

    #[test]
    fn gaps_are_silence_and_late_or_wild_timestamps_do_no_harm() {
        let mut tape = Tape::default();
        tape.caller(0, &[A; 160]);
        tape.caller(40, &[A; 160]); // a lost frame at 20
        tape.caller(20, &[B; 160]); // ...arriving late after all
        let (caller, _) = split(&tape.take(1).unwrap());
        assert_eq!((&caller[..160], &caller[160..320], &caller[320..]), (&[A; 160][..], &[B; 160][..], &[A; 160][..]));
        tape.caller(0, &[B; 160]); // before what was handed over: dropped
        assert!(tape.take(1).is_none());
        tape.caller(10_000_000_000, &[A; 160]); // days ahead: not believed
        assert_eq!(tape.take(1).unwrap().len(), 320);
    }
}
