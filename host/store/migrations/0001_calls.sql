-- Call records. One dialect for SQLite and PostgreSQL: TEXT, BIGINT and
-- DOUBLE PRECISION only; times are Unix milliseconds (wall clock) or media
-- milliseconds (since the stream started).
CREATE TABLE calls (
    call_sid TEXT PRIMARY KEY,
    stream_sid TEXT NOT NULL,
    direction TEXT NOT NULL,
    from_number TEXT,
    to_number TEXT,
    started_at BIGINT NOT NULL,
    ended_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    close_code BIGINT,
    -- Guest version digests in the order the call ran them, comma-separated.
    guests TEXT NOT NULL,
    turn_count BIGINT NOT NULL,
    frames_in BIGINT NOT NULL,
    frames_out BIGINT NOT NULL,
    -- The event timeline: a JSON array of {at_ms, source, event, fields}.
    timeline TEXT NOT NULL,
    timeline_dropped BIGINT NOT NULL
);
CREATE INDEX calls_by_start ON calls (started_at, call_sid);
CREATE INDEX calls_by_outcome ON calls (outcome, started_at);

CREATE TABLE turns (
    call_sid TEXT NOT NULL,
    turn BIGINT NOT NULL,
    eou_at_ms BIGINT,
    transcript TEXT,
    reply TEXT,
    barged_in BIGINT NOT NULL,
    heard TEXT,
    unheard TEXT,
    outcome TEXT,
    stt_ms DOUBLE PRECISION,
    llm_first_token_ms DOUBLE PRECISION,
    tts_first_byte_ms DOUBLE PRECISION,
    first_audio_ms DOUBLE PRECISION,
    fallback TEXT,
    errors TEXT,
    PRIMARY KEY (call_sid, turn)
);
