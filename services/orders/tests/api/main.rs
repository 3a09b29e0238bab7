//! Integration tests of the orders service against NATS JetStream and the
//! MongoDB-compatible test server. Tickets reach it as the tickets service announces them:
//! the tests publish those events (what tickets does with orders' events is tested in
//! tickets; the two together in the client's tests and the smoke test).
#![allow(clippy::unwrap_used)]

mod cancel;
mod config;
mod create;
mod details;
mod events;
mod healing;
mod helpers;
mod limits;
mod money;
mod openapi;
mod read;
mod request_ids;
mod resync;
