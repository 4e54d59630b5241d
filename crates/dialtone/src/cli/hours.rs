//! `hours` subcommands: a persona's office hours — its time zone, the
//! opening ranges of each weekday (split shifts allowed) and closure days —
//! set, shown and cleared. Every value is checked before anything is
//! written, with a message that says what is wrong and what is allowed.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use dialtone_store::{
    check_date, check_day, weekday_name, OfficeHours, Persona, PersonaUpdate, Store, StoreError,
    TimeRange,
};
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum HoursCommand {
    /// Set a persona's office hours. Each day option replaces that day:
    /// ranges like 09:00-12:00,13:00-17:00 (00:00-24:00: open all day), or
    /// "closed" (or "") for closed; days not given stay as they are.
    Set {
        persona: String,
        /// The persona's IANA time zone, e.g. Europe/Berlin (the hours are local times there).
        #[arg(long, value_name = "ZONE")]
        tz: Option<String>,
        #[command(flatten)]
        days: Box<DayOptions>,
        /// A closure day (holiday), YYYY-MM-DD; repeat for more.
        #[arg(long, value_name = "YYYY-MM-DD")]
        closed_on: Vec<String>,
        /// Remove a closure day, YYYY-MM-DD; repeat for more.
        #[arg(long, value_name = "YYYY-MM-DD")]
        open_on: Vec<String>,
    },
    /// The time zone, each weekday's ranges (or closed) and the closure days.
    Show {
        persona: String,
        /// One JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove all office hours and closure days of a persona.
    Clear { persona: String },
}

/// One option per weekday, Monday first.
#[derive(Args)]
pub struct DayOptions {
    /// Monday: ranges, e.g. 09:00-12:00,13:00-17:00, or closed.
    #[arg(long, value_name = "RANGES")]
    mon: Option<String>,
    /// Tuesday (as --mon).
    #[arg(long, value_name = "RANGES")]
    tue: Option<String>,
    /// Wednesday (as --mon).
    #[arg(long, value_name = "RANGES")]
    wed: Option<String>,
    /// Thursday (as --mon).
    #[arg(long, value_name = "RANGES")]
    thu: Option<String>,
    /// Friday (as --mon).
    #[arg(long, value_name = "RANGES")]
    fri: Option<String>,
    /// Saturday (as --mon).
    #[arg(long, value_name = "RANGES")]
    sat: Option<String>,
    /// Sunday (as --mon).
    #[arg(long, value_name = "RANGES")]
    sun: Option<String>,
}

const FLAGS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl DayOptions {
    fn each(self) -> [Option<String>; 7] {
        [
            self.mon, self.tue, self.wed, self.thu, self.fri, self.sat, self.sun,
        ]
    }
}

/// A store check's reason, under the option it came from.
fn invalid(flag: &str, value: &str, e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Invalid { reason } => anyhow!("--{flag} {value:?}: {reason}"),
        other => other.into(),
    }
}

/// "09:00-12:00,13:00-17:00", "closed" or "" as a day's ranges, checked.
fn parse_day(flag: &str, value: &str) -> Result<Vec<TimeRange>> {
    let text = value.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("closed") {
        return Ok(Vec::new());
    }
    let ranges = text
        .split(',')
        .map(|part| TimeRange::parse(part.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(flag, value, e))?;
    check_day(&ranges).map_err(|e| invalid(flag, value, e))?;
    Ok(ranges)
}

async fn persona(store: &Store, name: &str) -> Result<Persona> {
    store
        .personas()
        .get(name)
        .await?
        .ok_or_else(|| anyhow!("no persona {name} (see `dialtone persona list`)"))
}

pub async fn hours(store: &Store, cmd: HoursCommand) -> Result<()> {
    match cmd {
        HoursCommand::Set {
            persona: name,
            tz,
            days,
            closed_on,
            open_on,
        } => {
            let changes = Changes::check(tz, *days, closed_on, open_on)?;
            let gave_days = !changes.days.is_empty();
            let p = persona(store, &name).await?;
            changes.apply(store, &p).await?;
            println!("office hours of {name} updated");
            let p = persona(store, &name).await?;
            let hours = store.office_hours().get(&p.id).await?;
            match &hours {
                Some(h) if h.weekly.iter().all(Vec::is_empty) => println!(
                    "note: no day has opening hours, so {name} counts as closed every day \
                     (`dialtone hours clear {name}` removes office hours altogether)"
                ),
                None if gave_days => println!(
                    "note: no day has opening hours and there are no closure days, so {name} \
                     has no office hours configured"
                ),
                _ => {}
            }
            print!("{}", show_text(&p, hours.as_ref()));
        }
        HoursCommand::Show {
            persona: name,
            json,
        } => {
            let p = persona(store, &name).await?;
            let hours = store.office_hours().get(&p.id).await?;
            if json {
                println!("{}", json_of(&p, hours.as_ref()));
            } else {
                print!("{}", show_text(&p, hours.as_ref()));
            }
        }
        HoursCommand::Clear { persona: name } => {
            let p = persona(store, &name).await?;
            store.office_hours().clear(&p.id).await?;
            println!("office hours of {name} cleared (none configured)");
        }
    }
    Ok(())
}

/// What `hours set` was asked to change, every value checked.
struct Changes {
    tz: Option<String>,
    days: Vec<(usize, Vec<TimeRange>)>,
    closed_on: Vec<String>,
    open_on: Vec<String>,
}

impl Changes {
    fn check(
        tz: Option<String>,
        days: DayOptions,
        closed_on: Vec<String>,
        open_on: Vec<String>,
    ) -> Result<Changes> {
        if let Some(zone) = &tz {
            jiff::tz::TimeZone::get(zone).map_err(|e| {
                anyhow!(
                    "--tz {zone:?} is not a known IANA time zone such as UTC or \
                     Europe/Berlin ({e})"
                )
            })?;
        }
        let mut parsed = Vec::new();
        for (weekday, (flag, value)) in FLAGS.iter().zip(days.each()).enumerate() {
            if let Some(value) = value {
                parsed.push((weekday, parse_day(flag, &value)?));
            }
        }
        for (flag, list) in [("closed-on", &closed_on), ("open-on", &open_on)] {
            for day in list {
                check_date(day).map_err(|e| invalid(flag, day, e))?;
            }
        }
        if let Some(day) = closed_on.iter().find(|d| open_on.contains(d)) {
            bail!("{day} is given both to --closed-on and to --open-on: choose one");
        }
        if tz.is_none() && parsed.is_empty() && closed_on.is_empty() && open_on.is_empty() {
            bail!(
                "nothing to set: give --tz, a day (--mon … --sun, e.g. --mon 09:00-17:00), \
                 --closed-on or --open-on"
            );
        }
        Ok(Changes {
            tz,
            days: parsed,
            closed_on,
            open_on,
        })
    }

    async fn apply(self, store: &Store, p: &Persona) -> Result<()> {
        if let Some(tz) = self.tz {
            let update = PersonaUpdate {
                timezone: Some(tz),
                ..PersonaUpdate::default()
            };
            store.personas().update(&p.name, update).await?;
        }
        if !self.days.is_empty() {
            let current = store.office_hours().get(&p.id).await?;
            let mut weekly = current.map(|h| h.weekly).unwrap_or_default();
            for (weekday, ranges) in self.days {
                if let Some(day) = weekly.get_mut(weekday) {
                    *day = ranges;
                }
            }
            store
                .office_hours()
                .set_week(&p.id, &weekly)
                .await
                .with_context(|| format!("setting the office hours of {}", p.name))?;
        }
        for day in &self.closed_on {
            if !store.office_hours().add_closure(&p.id, day).await? {
                println!("{day} was a closure day already");
            }
        }
        for day in &self.open_on {
            if !store.office_hours().remove_closure(&p.id, day).await? {
                println!("{day} was not a closure day");
            }
        }
        Ok(())
    }
}

fn day_text(ranges: &[TimeRange]) -> String {
    if ranges.is_empty() {
        return "closed".to_owned();
    }
    let parts: Vec<String> = ranges.iter().map(TimeRange::to_string).collect();
    parts.join(", ")
}

fn show_text(p: &Persona, hours: Option<&OfficeHours>) -> String {
    let mut out = format!("persona   {}\ntimezone  {}\n", p.name, p.timezone);
    let Some(hours) = hours else {
        out.push_str("no office hours configured\n");
        return out;
    };
    for (weekday, ranges) in (0u8..).zip(&hours.weekly) {
        let day = weekday_name(weekday).unwrap_or("?");
        out.push_str(&format!("{day:<10}{}\n", day_text(ranges)));
    }
    let closures = if hours.closures.is_empty() {
        "none".to_owned()
    } else {
        hours.closures.join(", ")
    };
    out.push_str(&format!("closures  {closures}\n"));
    out
}

fn json_of(p: &Persona, hours: Option<&OfficeHours>) -> Value {
    let weekly: serde_json::Map<String, Value> = (0u8..7)
        .map(|weekday| {
            let ranges: Vec<String> = hours
                .and_then(|h| h.weekly.get(usize::from(weekday)))
                .map(|day| day.iter().map(TimeRange::to_string).collect())
                .unwrap_or_default();
            let name = weekday_name(weekday).unwrap_or("?").to_lowercase();
            (name, json!(ranges))
        })
        .collect();
    json!({
        "persona": p.name,
        "timezone": p.timezone,
        "configured": hours.is_some(),
        "weekly": weekly,
        "closures": hours.map(|h| h.closures.clone()).unwrap_or_default(),
    })
}
