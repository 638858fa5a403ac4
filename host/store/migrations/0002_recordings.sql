-- A call's recording (HOTLINE_RECORD_AUDIO): its file, relative to the
-- recordings directory, its size and length; NULL when not recorded.
ALTER TABLE calls ADD COLUMN recording TEXT;
ALTER TABLE calls ADD COLUMN recording_bytes BIGINT;
ALTER TABLE calls ADD COLUMN recording_ms BIGINT;
