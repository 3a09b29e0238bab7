//! Integration tests of the tickets service: the real app on a real port against NATS
//! JetStream and the MongoDB-compatible test server, one database and stream per test.
#![allow(clippy::unwrap_used)]

mod config;
mod create;
mod details;
mod helpers;
mod listeners;
mod live;
mod metrics;
mod mine;
mod openapi;
mod read;
mod remove;
mod request_ids;
mod search;
mod update;
