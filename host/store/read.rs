//! The API's reads: calls by filter and page, one call whole.

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Row};

use super::db::{Db, on_pool};
use super::record::Outcome;

/// Calls a page holds at most, and by default.
pub const MAX_LIMIT: usize = 500;
pub const DEFAULT_LIMIT: usize = 50;

/// `GET /api/calls`'s filters; every one optional.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CallFilter {
    /// Started at or after (Unix ms).
    pub since: Option<i64>,
    /// Started before (Unix ms).
    pub until: Option<i64>,
    pub outcome: Option<Outcome>,
    /// A guest version the call ran: its digest or the start of it.
    pub guest: Option<String>,
    /// The instance that served the call (`HOTLINE_INSTANCE`), exactly.
    pub instance: Option<String>,
    /// Words in a transcript or a reply, case-insensitive.
    pub q: Option<String>,
    pub limit: usize,
    /// Where the previous page ended: newest first, so calls that started
    /// before this one (ties broken by call SID).
    pub cursor: Option<Cursor>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub started_at: i64,
    pub call_sid: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.started_at, self.call_sid)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (at, sid) = text.split_once('.')?;
        Some(Cursor { started_at: at.parse().ok()?, call_sid: sid.to_string() })
    }
}

enum Bind {
    Int(i64),
    Text(String),
}

const CALL_COLUMNS: &str = "call_sid, stream_sid, direction, from_number, to_number, started_at, ended_at, \
     duration_ms, outcome, close_code, guests, turn_count, frames_in, frames_out, instance";

/// `LIKE` text matching `text` anywhere, its own `%`, `_` and `\` escaped.
fn contains(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The WHERE clause and its parameters, numbered from `$1`.
fn where_clause(f: &CallFilter) -> (String, Vec<Bind>) {
    let mut conditions = Vec::new();
    let mut binds = Vec::new();
    let next = |bind: Bind, binds: &mut Vec<Bind>| {
        binds.push(bind);
        format!("${}", binds.len())
    };
    if let Some(since) = f.since {
        conditions.push(format!("started_at >= {}", next(Bind::Int(since), &mut binds)));
    }
    if let Some(until) = f.until {
        conditions.push(format!("started_at < {}", next(Bind::Int(until), &mut binds)));
    }
    if let Some(outcome) = f.outcome {
        conditions.push(format!("outcome = {}", next(Bind::Text(outcome.name().into()), &mut binds)));
    }
    if let Some(guest) = &f.guest {
        let p = next(Bind::Text(contains(guest)), &mut binds);
        conditions.push(format!("LOWER(guests) LIKE {p} ESCAPE '\\'"));
    }
    if let Some(instance) = &f.instance {
        conditions.push(format!("instance = {}", next(Bind::Text(instance.clone()), &mut binds)));
    }
    if let Some(q) = &f.q {
        let p = next(Bind::Text(contains(q)), &mut binds);
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM turns t WHERE t.call_sid = calls.call_sid \
             AND (LOWER(t.transcript) LIKE {p} ESCAPE '\\' OR LOWER(t.reply) LIKE {p} ESCAPE '\\'))"
        ));
    }
    if let Some(c) = &f.cursor {
        let at = next(Bind::Int(c.started_at), &mut binds);
        let sid = next(Bind::Text(c.call_sid.clone()), &mut binds);
        conditions.push(format!("(started_at < {at} OR (started_at = {at} AND call_sid < {sid}))"));
    }
    let clause = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    (clause, binds)
}

/// One row of `calls` (the columns of `CALL_COLUMNS`) as JSON.
macro_rules! call_json {
    ($row:expr) => {{
        let row = $row;
        let guests: String = row.try_get("guests")?;
        json!({
            "call_sid": row.try_get::<String, _>("call_sid")?,
            "stream_sid": row.try_get::<String, _>("stream_sid")?,
            "direction": row.try_get::<String, _>("direction")?,
            "from": row.try_get::<Option<String>, _>("from_number")?,
            "to": row.try_get::<Option<String>, _>("to_number")?,
            "started_at": row.try_get::<i64, _>("started_at")?,
            "ended_at": row.try_get::<i64, _>("ended_at")?,
            "duration_ms": row.try_get::<i64, _>("duration_ms")?,
            "outcome": row.try_get::<String, _>("outcome")?,
            "close_code": row.try_get::<Option<i64>, _>("close_code")?,
            "guests": guests.split(',').filter(|g| !g.is_empty()).collect::<Vec<_>>(),
            "turns": row.try_get::<i64, _>("turn_count")?,
            "frames_in": row.try_get::<i64, _>("frames_in")?,
            "frames_out": row.try_get::<i64, _>("frames_out")?,
            // NULL for calls recorded before instances were.
            "instance": row.try_get::<Option<String>, _>("instance")?,
        })
    }};
}

/// A page of calls, newest first: `{"calls": [...], "next_cursor": ...}`
/// (`next_cursor` is null on the last page).
pub async fn list(db: &Db, filter: &CallFilter) -> Result<Value, sqlx::Error> {
    let (clause, binds) = where_clause(filter);
    let limit = filter.limit.clamp(1, MAX_LIMIT);
    // One more than the page: whether there is a next one.
    let sql =
        format!("SELECT {CALL_COLUMNS} FROM calls{clause} ORDER BY started_at DESC, call_sid DESC LIMIT {}", limit + 1);
    let mut calls: Vec<Value> = on_pool!(db, pool => {
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for bind in binds {
            query = match bind {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
            };
        }
        let rows = query.fetch_all(pool).await?;
        rows.iter().map(|row| Ok(call_json!(row))).collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    let next_cursor = if calls.len() > limit {
        calls.truncate(limit);
        calls.last().map(|c| {
            let started_at = c["started_at"].as_i64().unwrap_or(0);
            Cursor { started_at, call_sid: c["call_sid"].as_str().unwrap_or("").to_string() }.encode()
        })
    } else {
        None
    };
    Ok(json!({ "calls": calls, "next_cursor": next_cursor }))
}

/// The file name of a call's recording (`store/recordings.rs`), if it has one.
pub async fn recording(db: &Db, call_sid: &str) -> Result<Option<String>, sqlx::Error> {
    let sql = "SELECT recording FROM calls WHERE call_sid = $1";
    on_pool!(db, pool => {
        let row = sqlx::query(sql).bind(call_sid).fetch_optional(pool).await?;
        Ok(row.map(|row| row.try_get::<Option<String>, _>("recording")).transpose()?.flatten())
    })
}

/// One call with its turns and timeline; `None` if it is not recorded.
pub async fn get(db: &Db, call_sid: &str) -> Result<Option<Value>, sqlx::Error> {
    let call_sql = format!(
        "SELECT {CALL_COLUMNS}, timeline, timeline_dropped, recording, recording_bytes, recording_ms \
         FROM calls WHERE call_sid = $1"
    );
    let turns_sql = "SELECT turn, eou_at_ms, transcript, reply, barged_in, heard, unheard, outcome, stt_ms, \
         llm_first_token_ms, tts_first_byte_ms, first_audio_ms, fallback, errors \
         FROM turns WHERE call_sid = $1 ORDER BY turn";
    on_pool!(db, pool => {
        let Some(row) = sqlx::query(AssertSqlSafe(call_sql)).bind(call_sid).fetch_optional(pool).await? else {
            return Ok(None);
        };
        let mut call = call_json!(&row);
        let timeline: String = row.try_get("timeline")?;
        call["timeline"] = serde_json::from_str(&timeline).unwrap_or(Value::Null);
        call["timeline_dropped"] = json!(row.try_get::<i64, _>("timeline_dropped")?);
        call["recording"] = match row.try_get::<Option<String>, _>("recording")? {
            Some(_) => json!({
                "url": format!("/api/calls/{call_sid}/recording"),
                "bytes": row.try_get::<Option<i64>, _>("recording_bytes")?,
                "duration_ms": row.try_get::<Option<i64>, _>("recording_ms")?,
            }),
            None => Value::Null,
        };
        let turns = sqlx::query(turns_sql).bind(call_sid).fetch_all(pool).await?;
        let turns = turns
            .iter()
            .map(|t| {
                Ok(json!({
                    "turn": t.try_get::<i64, _>("turn")?,
                    "eou_at_ms": t.try_get::<Option<i64>, _>("eou_at_ms")?,
                    "transcript": t.try_get::<Option<String>, _>("transcript")?,
                    "reply": t.try_get::<Option<String>, _>("reply")?,
                    "barged_in": t.try_get::<i64, _>("barged_in")? != 0,
                    "heard": t.try_get::<Option<String>, _>("heard")?,
                    "unheard": t.try_get::<Option<String>, _>("unheard")?,
                    "outcome": t.try_get::<Option<String>, _>("outcome")?,
                    "stt_ms": t.try_get::<Option<f64>, _>("stt_ms")?,
                    "llm_first_token_ms": t.try_get::<Option<f64>, _>("llm_first_token_ms")?,
                    "tts_first_byte_ms": t.try_get::<Option<f64>, _>("tts_first_byte_ms")?,
                    "first_audio_ms": t.try_get::<Option<f64>, _>("first_audio_ms")?,
                    "fallback": t.try_get::<Option<String>, _>("fallback")?,
                    "errors": t.try_get::<Option<String>, _>("errors")?,
                }))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        call["turns"] = Value::Array(turns);
        Ok(Some(call))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_number_their_parameters_in_order_and_escape_like() {
        let f = CallFilter {
            since: Some(1),
            outcome: Some(Outcome::Drained),
            q: Some("50%_off".into()),
            cursor: Some(Cursor { started_at: 9, call_sid: "CA9".into() }),
            ..CallFilter::default()
        };
        let (clause, binds) = where_clause(&f);
        assert!(clause.starts_with(" WHERE started_at >= $1 AND outcome = $2 AND EXISTS"), "{clause}");
        assert!(
            clause.contains("LIKE $3 ESCAPE")
                && clause.ends_with("(started_at < $4 OR (started_at = $4 AND call_sid < $5))")
        );
        assert_eq!(binds.len(), 5);
        assert!(matches!(&binds[2], Bind::Text(t) if t == "%50\\%\\_off%"));
        assert_eq!(where_clause(&CallFilter::default()).0, "");
        let cursor = Cursor { started_at: 17, call_sid: "CA.1".into() };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("x.CA1"), None);
    }
}
