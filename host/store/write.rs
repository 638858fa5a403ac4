//! The writer's statements: a batch of call records in one transaction,
//! and the retention purge.

use super::db::{Db, on_pool};
use super::record::CallRecord;

const INSERT_CALL: &str = "INSERT INTO calls (call_sid, stream_sid, direction, from_number, to_number, \
     started_at, ended_at, duration_ms, outcome, close_code, guests, turn_count, frames_in, frames_out, \
     timeline, timeline_dropped, recording, recording_bytes, recording_ms, instance) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
     ON CONFLICT (call_sid) DO NOTHING";

const INSERT_TURN: &str = "INSERT INTO turns (call_sid, turn, eou_at_ms, transcript, reply, barged_in, heard, \
     unheard, outcome, stt_ms, llm_first_token_ms, tts_first_byte_ms, first_audio_ms, fallback, errors) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     ON CONFLICT (call_sid, turn) DO NOTHING";

/// Writes `records` in one transaction: all of them or none. A call SID
/// already recorded keeps its first record (a caller back from a transfer
/// continues the call's record, `media/record.rs`, unless this instance
/// no longer held it: then its stream's record of its own is dropped);
/// a turn number seen twice (a guest restored from an older snapshot
/// counts again) keeps its first turn: a batch never fails on its content.
/// Every record is `instance`'s: a call belongs to the instance that held
/// its socket.
pub async fn write_batch(db: &Db, records: &[CallRecord], instance: &str) -> Result<(), sqlx::Error> {
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        for r in records {
            let timeline = if r.timeline.is_empty() { "[]" } else { r.timeline.as_str() };
            let inserted = sqlx::query(INSERT_CALL)
                .bind(&r.call_sid)
                .bind(&r.stream_sid)
                .bind(&r.direction)
                .bind(&r.from)
                .bind(&r.to)
                .bind(r.started_at)
                .bind(r.ended_at)
                .bind(r.duration_ms)
                .bind(r.outcome.map_or("unknown", |o| o.name()))
                .bind(r.close_code.map(i64::from))
                .bind(r.guests.join(","))
                .bind(r.turns.len() as i64)
                .bind(r.frames_in)
                .bind(r.frames_out)
                .bind(timeline)
                .bind(r.timeline_dropped)
                .bind(r.recording.as_ref().map(|rec| rec.name.as_str()))
                .bind(r.recording.as_ref().map(|rec| rec.bytes))
                .bind(r.recording.as_ref().map(|rec| rec.duration_ms))
                .bind(instance)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted == 0 {
                continue;
            }
            for t in &r.turns {
                sqlx::query(INSERT_TURN)
                    .bind(&r.call_sid)
                    .bind(t.turn)
                    .bind(t.eou_at_ms)
                    .bind(&t.transcript)
                    .bind(&t.reply)
                    .bind(i64::from(t.barged_in))
                    .bind(&t.heard)
                    .bind(&t.unheard)
                    .bind(&t.outcome)
                    .bind(t.stt_ms)
                    .bind(t.llm_first_token_ms)
                    .bind(t.tts_first_byte_ms)
                    .bind(t.first_audio_ms)
                    .bind(&t.fallback)
                    .bind(&t.errors)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await
    })
}

/// Deletes the calls that started before `cutoff` (Unix ms), with their
/// turns; returns how many calls went.
pub async fn purge(db: &Db, cutoff: i64) -> Result<u64, sqlx::Error> {
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM turns WHERE call_sid IN (SELECT call_sid FROM calls WHERE started_at < $1)")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
        let calls = sqlx::query("DELETE FROM calls WHERE started_at < $1").bind(cutoff).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(calls.rows_affected())
    })
}
