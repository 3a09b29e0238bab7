//! Integration tests of the payments service: the real `async-stripe` client talks to a
//! Stripe stand-in each test starts; NATS JetStream and the MongoDB-compatible server
//! are real.
#![allow(clippy::unwrap_used)]

mod config;
mod helpers;
mod openapi;
mod pay;
mod refunds;
mod webhook;
