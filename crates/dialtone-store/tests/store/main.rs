//! Integration tests. Every test body in `accounts`, `users`,
//! `registrations`, `registration_reads`, `registration_races` and
//! `lifecycle` runs twice: as `<module>::sqlite::<name>` on a fresh SQLite
//! file and as `<module>::postgres::<name>` on a fresh PostgreSQL database
//! (see `common`). `sqlite_only` covers what only exists on SQLite.

#[macro_use]
mod common;

mod accounts;
mod lifecycle;
mod registration_races;
mod registration_reads;
mod registrations;
mod sqlite_only;
mod users;
