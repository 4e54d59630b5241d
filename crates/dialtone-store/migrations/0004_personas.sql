-- Personas (AI agents a number can ring) and what call records keep about
-- them. Same portable rules as 0001-0003: TEXT uuid ids, BIGINT unix-second
-- times, no BOOLEAN, no AUTOINCREMENT/SERIAL, no collations; SQL that SQLite
-- and PostgreSQL both accept unchanged.

-- An AI agent: which realtime provider and model it talks to, what it is told,
-- how turns are detected, and what happens when the model cannot be reached.
-- The provider's API key is never stored: api_key_env names the environment
-- variable that holds it (NULL: OPENAI_API_KEY or GEMINI_API_KEY).
-- vad_threshold_milli is the VAD threshold * 1000, so it round-trips exactly.
-- NULL in model, voice and the vad_* columns means the provider's default.
CREATE TABLE personas (
    id                    TEXT   PRIMARY KEY,
    account_id            TEXT   NOT NULL REFERENCES accounts (id),
    name                  TEXT   NOT NULL UNIQUE,
    provider              TEXT   NOT NULL,
    url                   TEXT   NOT NULL,
    model                 TEXT,
    voice                 TEXT,
    instructions          TEXT   NOT NULL,
    greeting              TEXT,
    api_key_env           TEXT,
    timezone              TEXT   NOT NULL DEFAULT 'UTC',
    turn_detection        TEXT   NOT NULL,
    vad_threshold_milli   BIGINT,
    vad_prefix_padding_ms BIGINT,
    vad_silence_ms        BIGINT,
    vad_eagerness         TEXT,
    barge_in_min_ms       BIGINT NOT NULL,
    max_duration_secs     BIGINT NOT NULL,
    idle_timeout_secs     BIGINT NOT NULL,
    fallback              TEXT,
    transcription_model   TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE INDEX personas_account_id ON personas (account_id);

-- The persona's name when an AI agent took part in the call.
ALTER TABLE calls ADD COLUMN persona TEXT;

-- What was said: JSON array text [{"side":"caller"|"agent","text":..,"at_ms":..}],
-- stored as given.
ALTER TABLE calls ADD COLUMN transcript TEXT;
