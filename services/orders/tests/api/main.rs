//! Integration tests of the orders service, run with a real tickets service on the same
//! event stream (each with its own database), against NATS JetStream and the
//! MongoDB-compatible test server.
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
