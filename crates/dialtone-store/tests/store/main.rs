//! Integration tests. Every test body in `accounts`, `users`,
//! `registrations`, `registration_reads`, `registration_races`, `lifecycle`,
//! `trunks`, `numbers`, `routes`, `personas`, `calls`, `api_keys`, `hours`, `leads`, `limits`
//! and `migrations` runs twice: as
//! `<module>::sqlite::<name>` on a fresh SQLite file and as
//! `<module>::postgres::<name>` on a fresh PostgreSQL database (see `common`;
//! `migrations` and `upgrade_0004` start from an empty database rather than a
//! migrated store).
//! `sqlite_only` covers what only exists on SQLite.
//! `contacts`, `queues`, `persona_tools`, `persona_mcp_servers` and
//! `scheduled_calls` and `nodes` run on both backends too; `phone`
//! needs no database.

#[macro_use]
mod common;

mod accounts;
mod api_keys;
mod calls;
mod contacts;
mod hours;
mod leads;
mod lifecycle;
mod limits;
mod migrations;
mod nodes;
mod numbers;
mod persona_mcp_servers;
mod persona_tools;
mod personas;
mod phone;
mod queues;
mod registration_races;
mod registration_reads;
mod registrations;
mod routes;
mod scheduled_calls;
mod sqlite_only;
mod srtp;
mod trunks;
mod upgrade_0004;
mod users;
mod write_behind;
