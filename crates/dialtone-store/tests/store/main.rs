//! Integration tests. Every test body in `accounts`, `users`,
//! `registrations`, `registration_reads`, `registration_races`, `lifecycle`,
//! `trunks`, `numbers`, `routes`, `personas`, `calls` and `migrations` runs twice: as
//! `<module>::sqlite::<name>` on a fresh SQLite file and as
//! `<module>::postgres::<name>` on a fresh PostgreSQL database (see `common`;
//! `migrations` starts from an empty database rather than a migrated store).
//! `sqlite_only` covers what only exists on SQLite.

#[macro_use]
mod common;

mod accounts;
mod calls;
mod lifecycle;
mod migrations;
mod numbers;
mod personas;
mod registration_races;
mod registration_reads;
mod registrations;
mod routes;
mod sqlite_only;
mod trunks;
mod users;
