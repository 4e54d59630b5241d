//! Personas: the AI agents a number can ring. A persona belongs to an account
//! and has a unique name (numbers target it by name); it says which realtime
//! provider, endpoint, model and voice to use, what the model is told, how
//! turns are detected, its limits, and where the call goes when the model
//! cannot be reached. The provider's API key is never stored — only the name
//! of the environment variable that holds it. The store does not validate the
//! fields on write; the rules every front end applies before it writes are in
//! `check`, shared by the CLI and the management tools.

pub mod check;

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::batch::AnyQuery;
use crate::error::{is_foreign_key_violation, is_unique_violation};
use crate::numbers::TargetKind;
use crate::store::unix_now;
use crate::{Store, StoreError};

/// An AI agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Persona {
    pub id: String,
    pub account_id: String,
    /// Unique across the switch; numbers route to `persona:NAME`.
    pub name: String,
    /// "openai" or "gemini".
    pub provider: String,
    /// The realtime websocket URL (ws:// or wss://).
    pub url: String,
    /// None: the provider's default.
    pub model: Option<String>,
    /// None: the provider's default.
    pub voice: Option<String>,
    /// The system prompt, with {caller_number}, {called_number},
    /// {contact_name}, {date}, {time} kept verbatim (filled per call).
    pub instructions: String,
    /// Said first when the call is answered; None: the caller speaks first.
    pub greeting: Option<String>,
    /// The NAME of the environment variable holding the provider key; None:
    /// OPENAI_API_KEY or GEMINI_API_KEY. The key itself is never stored.
    pub api_key_env: Option<String>,
    /// IANA time zone name for {date} and {time}.
    pub timezone: String,
    /// "server_vad", "semantic_vad" or "none".
    pub turn_detection: String,
    /// 0.0–1.0; None: the provider's default. Stored as thousandths.
    pub vad_threshold: Option<f64>,
    /// None: the provider's default.
    pub vad_prefix_padding_ms: Option<u32>,
    /// None: the provider's default.
    pub vad_silence_ms: Option<u32>,
    /// "low", "medium", "high" or "auto" (semantic VAD); None: the provider's default.
    pub vad_eagerness: Option<String>,
    /// Caller speech must last this long before the agent is cut off; 0: at once.
    pub barge_in_min_ms: u32,
    /// 0: the switch's calls.max_duration.
    pub max_duration_secs: u32,
    /// 0: off; else re-prompt after this much silence, hang up after twice that.
    pub idle_timeout_secs: u32,
    /// "user:NAME", "number:N" or "queue:NAME" when the model cannot be
    /// reached; None: answer 503.
    pub fallback: Option<String>,
    /// The caller-side transcription model; None: no caller transcript.
    pub transcription_model: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// What [`Personas::create`] needs: every field of a [`Persona`] but the id
/// and the times.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPersona {
    pub account_id: String,
    pub name: String,
    pub provider: String,
    pub url: String,
    pub model: Option<String>,
    pub voice: Option<String>,
    pub instructions: String,
    pub greeting: Option<String>,
    pub api_key_env: Option<String>,
    pub timezone: String,
    pub turn_detection: String,
    pub vad_threshold: Option<f64>,
    pub vad_prefix_padding_ms: Option<u32>,
    pub vad_silence_ms: Option<u32>,
    pub vad_eagerness: Option<String>,
    pub barge_in_min_ms: u32,
    pub max_duration_secs: u32,
    pub idle_timeout_secs: u32,
    pub fallback: Option<String>,
    pub transcription_model: Option<String>,
}

/// What [`Personas::update`] changes: `None` keeps the stored value;
/// `Some(v)` replaces it, and for nullable fields `Some(None)` clears it.
/// The name (what numbers refer to) cannot change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonaUpdate {
    pub account_id: Option<String>,
    pub provider: Option<String>,
    pub url: Option<String>,
    pub model: Option<Option<String>>,
    pub voice: Option<Option<String>>,
    pub instructions: Option<String>,
    pub greeting: Option<Option<String>>,
    pub api_key_env: Option<Option<String>>,
    pub timezone: Option<String>,
    pub turn_detection: Option<String>,
    pub vad_threshold: Option<Option<f64>>,
    pub vad_prefix_padding_ms: Option<Option<u32>>,
    pub vad_silence_ms: Option<Option<u32>>,
    pub vad_eagerness: Option<Option<String>>,
    pub barge_in_min_ms: Option<u32>,
    pub max_duration_secs: Option<u32>,
    pub idle_timeout_secs: Option<u32>,
    pub fallback: Option<Option<String>>,
    pub transcription_model: Option<Option<String>>,
}

impl PersonaUpdate {
    /// Whether the update would change nothing.
    pub fn is_empty(&self) -> bool {
        *self == PersonaUpdate::default()
    }

    fn apply(self, p: &mut Persona) {
        fn set<T>(field: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *field = v;
            }
        }
        set(&mut p.account_id, self.account_id);
        set(&mut p.provider, self.provider);
        set(&mut p.url, self.url);
        set(&mut p.model, self.model);
        set(&mut p.voice, self.voice);
        set(&mut p.instructions, self.instructions);
        set(&mut p.greeting, self.greeting);
        set(&mut p.api_key_env, self.api_key_env);
        set(&mut p.timezone, self.timezone);
        set(&mut p.turn_detection, self.turn_detection);
        set(&mut p.vad_threshold, self.vad_threshold);
        set(&mut p.vad_prefix_padding_ms, self.vad_prefix_padding_ms);
        set(&mut p.vad_silence_ms, self.vad_silence_ms);
        set(&mut p.vad_eagerness, self.vad_eagerness);
        set(&mut p.barge_in_min_ms, self.barge_in_min_ms);
        set(&mut p.max_duration_secs, self.max_duration_secs);
        set(&mut p.idle_timeout_secs, self.idle_timeout_secs);
        set(&mut p.fallback, self.fallback);
        set(&mut p.transcription_model, self.transcription_model);
    }
}

/// The personas table. Obtained from [`Store::personas`].
#[derive(Debug, Clone, Copy)]
pub struct Personas<'a> {
    store: &'a Store,
}

/// The columns besides id, name and created_at, in the order [`bind_mutable`]
/// binds them; `update` rewrites all of them.
const MUTABLE_COLUMNS: &str = "account_id, provider, url, model, voice, instructions, greeting, \
     api_key_env, timezone, turn_detection, vad_threshold_milli, vad_prefix_padding_ms, \
     vad_silence_ms, vad_eagerness, barge_in_min_ms, max_duration_secs, idle_timeout_secs, \
     fallback, transcription_model, updated_at";

/// Every column, as `persona_from_row` reads them.
macro_rules! select_personas {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, created_at, account_id, provider, url, model, voice, instructions, \
             greeting, api_key_env, timezone, turn_detection, vad_threshold_milli, \
             vad_prefix_padding_ms, vad_silence_ms, vad_eagerness, barge_in_min_ms, \
             max_duration_secs, idle_timeout_secs, fallback, transcription_model, updated_at \
             FROM personas ",
            $rest
        )
    };
}

/// Binds the fields of [`MUTABLE_COLUMNS`], in that order.
fn bind_mutable<'q>(query: AnyQuery<'q>, p: &'q Persona) -> AnyQuery<'q> {
    query
        .bind(p.account_id.as_str())
        .bind(p.provider.as_str())
        .bind(p.url.as_str())
        .bind(p.model.as_deref())
        .bind(p.voice.as_deref())
        .bind(p.instructions.as_str())
        .bind(p.greeting.as_deref())
        .bind(p.api_key_env.as_deref())
        .bind(p.timezone.as_str())
        .bind(p.turn_detection.as_str())
        .bind(p.vad_threshold.map(to_milli))
        .bind(p.vad_prefix_padding_ms.map(i64::from))
        .bind(p.vad_silence_ms.map(i64::from))
        .bind(p.vad_eagerness.as_deref())
        .bind(i64::from(p.barge_in_min_ms))
        .bind(i64::from(p.max_duration_secs))
        .bind(i64::from(p.idle_timeout_secs))
        .bind(p.fallback.as_deref())
        .bind(p.transcription_model.as_deref())
        .bind(p.updated_at)
}

/// A threshold as thousandths, so it round-trips exactly (like `q_milli`).
fn to_milli(value: f64) -> i64 {
    // `as` saturates (NaN gives 0); callers keep the value in 0.0–1.0.
    (value * 1000.0).round() as i64
}

impl<'a> Personas<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Personas { store }
    }

    /// Creates a persona. [`StoreError::Conflict`] if the name is taken,
    /// [`StoreError::NotFound`] if the account does not exist.
    pub async fn create(&self, new: NewPersona) -> Result<Persona, StoreError> {
        let now = unix_now();
        let persona = Persona {
            id: Uuid::new_v4().to_string(),
            account_id: new.account_id,
            name: new.name,
            provider: new.provider,
            url: new.url,
            model: new.model,
            voice: new.voice,
            instructions: new.instructions,
            greeting: new.greeting,
            api_key_env: new.api_key_env,
            timezone: new.timezone,
            turn_detection: new.turn_detection,
            vad_threshold: new.vad_threshold,
            vad_prefix_padding_ms: new.vad_prefix_padding_ms,
            vad_silence_ms: new.vad_silence_ms,
            vad_eagerness: new.vad_eagerness,
            barge_in_min_ms: new.barge_in_min_ms,
            max_duration_secs: new.max_duration_secs,
            idle_timeout_secs: new.idle_timeout_secs,
            fallback: new.fallback,
            transcription_model: new.transcription_model,
            created_at: now,
            updated_at: now,
        };
        // $1..$3 for id, name, created_at, then one per mutable column.
        let placeholders: Vec<String> = (1..=3 + MUTABLE_COLUMNS.split(", ").count())
            .map(|n| format!("${n}"))
            .collect();
        let sql = format!(
            "INSERT INTO personas (id, name, created_at, {MUTABLE_COLUMNS}) VALUES ({})",
            placeholders.join(", ")
        );
        let query = sqlx::query(&sql)
            .bind(persona.id.as_str())
            .bind(persona.name.as_str())
            .bind(persona.created_at);
        let inserted = bind_mutable(query, &persona)
            .execute(self.store.pool())
            .await;
        match inserted {
            Ok(_) => Ok(persona),
            Err(e) => Err(write_error(e, &persona)),
        }
    }

    /// The persona with that name, if any.
    pub async fn get(&self, name: &str) -> Result<Option<Persona>, StoreError> {
        let row = sqlx::query(select_personas!("WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.as_ref().map(persona_from_row).transpose()?)
    }

    /// The persona with that id, if any.
    pub async fn get_by_id(&self, id: &str) -> Result<Option<Persona>, StoreError> {
        let row = sqlx::query(select_personas!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.as_ref().map(persona_from_row).transpose()?)
    }

    /// Every persona, ordered by name.
    pub async fn list(&self) -> Result<Vec<Persona>, StoreError> {
        let rows = sqlx::query(select_personas!(""))
            .fetch_all(self.store.pool())
            .await?;
        sorted(&rows)
    }

    /// The account's personas, ordered by name.
    pub async fn list_for_account(&self, account_id: &str) -> Result<Vec<Persona>, StoreError> {
        let rows = sqlx::query(select_personas!("WHERE account_id = $1"))
            .bind(account_id)
            .fetch_all(self.store.pool())
            .await?;
        sorted(&rows)
    }

    /// Applies `changes` to the persona and sets its updated_at to now (never
    /// earlier than it was); returns the persona as stored.
    /// [`StoreError::NotFound`] if there is no such persona or the new
    /// account does not exist.
    pub async fn update(&self, name: &str, changes: PersonaUpdate) -> Result<Persona, StoreError> {
        let mut tx = self.store.begin_write().await?;
        // A no-op write first takes the row lock on PostgreSQL, so concurrent
        // updates of one persona apply one after the other instead of one
        // overwriting the other's fields (SQLite: BEGIN IMMEDIATE already does).
        let locked = sqlx::query("UPDATE personas SET updated_at = updated_at WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let row = if locked == 0 {
            None
        } else {
            sqlx::query(select_personas!("WHERE name = $1"))
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
        };
        let Some(row) = row else {
            tx.rollback().await?;
            return Err(StoreError::NotFound {
                what: format!("persona {name:?}"),
            });
        };
        let mut persona = persona_from_row(&row)?;
        changes.apply(&mut persona);
        persona.updated_at = unix_now().max(persona.updated_at);

        let assignments: Vec<String> = MUTABLE_COLUMNS
            .split(", ")
            .enumerate()
            .map(|(n, col)| format!("{col} = ${}", n + 2))
            .collect();
        let sql = format!(
            "UPDATE personas SET {} WHERE id = $1",
            assignments.join(", ")
        );
        let query = sqlx::query(&sql).bind(persona.id.as_str());
        match bind_mutable(query, &persona).execute(&mut *tx).await {
            Ok(_) => {
                tx.commit().await?;
                Ok(persona)
            }
            Err(e) => {
                tx.rollback().await?;
                Err(write_error(e, &persona))
            }
        }
    }

    /// Removes the persona; Ok(false) when there was no such persona.
    /// [`StoreError::InUse`] (nothing removed) while a number routes to it,
    /// naming the numbers: remove or repoint them first.
    pub async fn remove(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let mut numbers: Vec<String> =
            sqlx::query_scalar("SELECT number FROM numbers WHERE target_kind = $1 AND target = $2")
                .bind(TargetKind::Persona.as_str())
                .bind(name)
                .fetch_all(&mut *tx)
                .await?;
        let exists = sqlx::query_scalar::<_, String>("SELECT id FROM personas WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            tx.rollback().await?;
            return Ok(false);
        }
        if !numbers.is_empty() {
            tx.rollback().await?;
            numbers.sort();
            return Err(StoreError::InUse {
                what: format!("persona {name:?}"),
                by: format!("number(s) {numbers:?}"),
            });
        }
        // Its own tools go with it.
        sqlx::query(
            "DELETE FROM persona_tools WHERE persona_id IN (SELECT id FROM personas WHERE name = $1)",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM personas WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The domain error for a failed insert or update of `p`.
fn write_error(e: sqlx::Error, p: &Persona) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict {
            what: format!("persona {:?}", p.name),
        }
    } else if is_foreign_key_violation(&e) {
        StoreError::NotFound {
            what: format!("account {:?}", p.account_id),
        }
    } else {
        e.into()
    }
}

/// The rows as personas, ordered by name in Rust so both backends agree
/// (see `Accounts::list`).
fn sorted(rows: &[AnyRow]) -> Result<Vec<Persona>, StoreError> {
    let mut personas = rows
        .iter()
        .map(persona_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    personas.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(personas)
}

/// A non-negative BIGINT column that must fit a u32.
fn u32_column(row: &AnyRow, column: &str) -> Result<u32, sqlx::Error> {
    let value: i64 = row.try_get(column)?;
    to_u32(column, value)
}

fn opt_u32_column(row: &AnyRow, column: &str) -> Result<Option<u32>, sqlx::Error> {
    let value: Option<i64> = row.try_get(column)?;
    value.map(|v| to_u32(column, v)).transpose()
}

fn to_u32(column: &str, value: i64) -> Result<u32, sqlx::Error> {
    u32::try_from(value).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.into(),
        source: Box::new(e),
    })
}

fn persona_from_row(row: &AnyRow) -> Result<Persona, sqlx::Error> {
    let milli: Option<i64> = row.try_get("vad_threshold_milli")?;
    Ok(Persona {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        provider: row.try_get("provider")?,
        url: row.try_get("url")?,
        model: row.try_get("model")?,
        voice: row.try_get("voice")?,
        instructions: row.try_get("instructions")?,
        greeting: row.try_get("greeting")?,
        api_key_env: row.try_get("api_key_env")?,
        timezone: row.try_get("timezone")?,
        turn_detection: row.try_get("turn_detection")?,
        // m / 1000 is the f64 nearest the decimal m/1000, so a threshold given
        // with at most three decimals reads back equal to what was written.
        vad_threshold: milli.map(|m| m as f64 / 1000.0),
        vad_prefix_padding_ms: opt_u32_column(row, "vad_prefix_padding_ms")?,
        vad_silence_ms: opt_u32_column(row, "vad_silence_ms")?,
        vad_eagerness: row.try_get("vad_eagerness")?,
        barge_in_min_ms: u32_column(row, "barge_in_min_ms")?,
        max_duration_secs: u32_column(row, "max_duration_secs")?,
        idle_timeout_secs: u32_column(row, "idle_timeout_secs")?,
        fallback: row.try_get("fallback")?,
        transcription_model: row.try_get("transcription_model")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
