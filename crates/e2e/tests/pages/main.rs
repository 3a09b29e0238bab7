//! Integration tests of the web client: the real client router on a real port, in front
//! of the real auth, tickets, orders and payments services (one database each, one event
//! stream; payments with its simulated gateway, or a Stripe stand-in where a test needs an
//! answer the simulation cannot give).
#![allow(clippy::unwrap_used)]

mod account;
mod bans;
mod config;
mod docs;
mod events;
mod helpers;
mod metrics;
mod orders;
mod password_reset;
mod site;
mod tickets;
mod trace;
mod unavailable;
