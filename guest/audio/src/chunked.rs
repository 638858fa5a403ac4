//! μ-law audio that grows a frame at a time and is trimmed from the front,
//! kept in fixed chunks of 200 ms.
//!
//! Why not one `Vec`: inside a guest every live call costs the high-water
//! mark of its heap, for the whole call. A `Vec` grown by doubling leaves
//! each smaller buffer it moved out of behind it (freed, but too small to
//! hold the next), so an utterance of 1.5 s once touched 32 KiB of heap
//! for 12 KB of audio; dropping the oldest audio from the front moved all
//! the rest. Chunks of one size are reused as they are freed, nothing is
//! ever copied to grow or to trim, and at most one chunk is part-empty at
//! each end.

use std::collections::VecDeque;

use crate::FRAME_BYTES;

/// Bytes per chunk: 200 ms, whole frames.
pub const CHUNK_BYTES: usize = 10 * FRAME_BYTES;

/// No `PartialEq`: two buffers of the same audio may be chunked differently.
#[derive(Debug, Clone, Default)]
pub struct ChunkedAudio {
    /// Every chunk but the last holds `CHUNK_BYTES`.
    chunks: VecDeque<Vec<u8>>,
    /// Bytes at the start of the first chunk that were trimmed away.
    head: usize,
    len: usize,
}

impl ChunkedAudio {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn extend_from_slice(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.chunks.back().is_none_or(|last| last.len() == CHUNK_BYTES) {
                self.chunks.push_back(Vec::with_capacity(CHUNK_BYTES));
            }
            let last = self.chunks.back_mut().expect("a chunk with room");
            let n = (CHUNK_BYTES - last.len()).min(bytes.len());
            last.extend_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
        }
    }

    /// Drops the oldest `n` bytes (all of them, if there are fewer).
    pub fn trim_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        self.head += n;
        while let Some(first) = self.chunks.front() {
            if self.head < first.len() {
                break;
            }
            self.head -= first.len();
            self.chunks.pop_front();
        }
        if self.chunks.is_empty() {
            self.head = 0;
        }
    }

    /// Keeps the oldest `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        while self.len > len {
            let first = self.chunks.len() == 1;
            let last = self.chunks.back_mut().expect("bytes are in chunks");
            let start = if first { self.head } else { 0 };
            let drop = (self.len - len).min(last.len() - start);
            last.truncate(last.len() - drop);
            self.len -= drop;
            if last.len() == start {
                self.chunks.pop_back();
                if first {
                    self.head = 0;
                }
            }
        }
    }

    /// The audio in order, in pieces of at most a chunk.
    pub fn slices(&self) -> impl DoubleEndedIterator<Item = &[u8]> + Clone {
        let head = self.head;
        self.chunks.iter().enumerate().map(move |(i, c)| if i == 0 { &c[head..] } else { &c[..] })
    }

    /// The bytes newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = u8> + '_ {
        self.slices().rev().flat_map(|s| s.iter().rev().copied())
    }

    /// The audio as owned pieces, in order, without copying it (but for
    /// moving the first piece's bytes to its start).
    pub fn into_pieces(mut self) -> impl Iterator<Item = Vec<u8>> {
        if let Some(first) = self.chunks.front_mut() {
            first.drain(..self.head);
        }
        self.chunks.into_iter()
    }
}

impl From<&[u8]> for ChunkedAudio {
    fn from(bytes: &[u8]) -> Self {
        let mut audio = ChunkedAudio::new();
        audio.extend_from_slice(bytes);
        audio
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl ChunkedAudio {
        fn to_vec(&self) -> Vec<u8> {
            self.slices().collect::<Vec<_>>().concat()
        }
    }

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn it_reads_back_what_was_written_whatever_the_pieces() {
        let all = bytes(5 * CHUNK_BYTES + 37);
        let mut audio = ChunkedAudio::new();
        for piece in all.chunks(7) {
            audio.extend_from_slice(piece);
        }
        assert_eq!(audio.len(), all.len());
        assert_eq!(audio.to_vec(), all);
        assert_eq!(audio.chunks.len(), 6, "chunks are filled before a new one starts");
        let newest: Vec<u8> = audio.newest_first().collect();
        assert_eq!(newest, all.iter().rev().copied().collect::<Vec<u8>>());
    }

    #[test]
    fn trimming_the_front_drops_whole_chunks_and_keeps_the_rest_in_place() {
        let all = bytes(3 * CHUNK_BYTES + 100);
        let mut audio = ChunkedAudio::from(&all[..]);
        audio.trim_front(CHUNK_BYTES + 60);
        assert_eq!(audio.to_vec(), &all[CHUNK_BYTES + 60..]);
        assert_eq!(audio.chunks.len(), 3, "the first chunk is gone");
        audio.extend_from_slice(&[9; 3]);
        assert_eq!(audio.len(), 2 * CHUNK_BYTES + 100 - 60 + 3);
        audio.trim_front(usize::MAX);
        assert!(audio.is_empty());
        assert_eq!(audio.to_vec(), Vec::<u8>::new());
        audio.extend_from_slice(&[1, 2]);
        assert_eq!(audio.to_vec(), [1, 2], "an emptied buffer starts again at a chunk's start");
    }

    #[test]
    fn truncating_keeps_the_oldest_bytes_even_inside_a_trimmed_first_chunk() {
        let all = bytes(2 * CHUNK_BYTES + 10);
        let mut audio = ChunkedAudio::from(&all[..]);
        audio.trim_front(50);
        audio.truncate(CHUNK_BYTES);
        assert_eq!(audio.to_vec(), &all[50..50 + CHUNK_BYTES]);
        audio.truncate(20);
        assert_eq!(audio.to_vec(), &all[50..70]);
        audio.truncate(0);
        assert!(audio.is_empty());
        audio.extend_from_slice(&[7]);
        assert_eq!(audio.to_vec(), [7]);
    }

    #[test]
    fn its_pieces_are_the_audio_in_order() {
        let all = bytes(2 * CHUNK_BYTES + 10);
        let mut audio = ChunkedAudio::from(&all[..]);
        audio.trim_front(33);
        let pieces: Vec<Vec<u8>> = audio.into_pieces().collect();
        assert_eq!(pieces.iter().map(Vec::len).collect::<Vec<_>>(), [CHUNK_BYTES - 33, CHUNK_BYTES, 10]);
        assert_eq!(pieces.concat(), &all[33..]);
    }
}
