//! Integration tests of the web client: the real client router on a real port, in front
//! of the real auth, tickets and orders services (one database each, one event stream)
//! and a stand-in payments service that keeps its contract.
#![allow(clippy::unwrap_used)]

mod account;
mod config;
mod fake_payments;
mod helpers;
mod orders;
mod site;
mod tickets;
mod unavailable;
