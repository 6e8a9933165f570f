//! The integration suite: every test speaks HTTP to the real server on its own fresh database,
//! once on SQLite and once on PostgreSQL (when `SWITCHBOARD_TEST_POSTGRES_URL` is set).

mod helpers;

mod audit;
mod auth;
mod cli;
mod concurrency;
mod counts;
mod dialects;
mod discovery;
mod domain;
mod groups;
mod hostile;
mod invitations;
mod nesting;
mod query;
mod users;
