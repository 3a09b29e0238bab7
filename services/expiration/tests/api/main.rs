//! Integration tests of the expiration service against real Redis and NATS JetStream:
//! each test has its own key prefix and stream.
#![allow(clippy::unwrap_used)]

mod config;
mod expiry;
mod helpers;
