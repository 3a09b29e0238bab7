//! Integration tests of the notifications service against real MongoDB, NATS JetStream,
//! Redis and Mailpit (SMTP), and a SendGrid stand-in: each test has its own database,
//! stream, key prefix and recipients.
#![allow(clippy::unwrap_used)]

mod config;
mod emails;
mod expiry;
mod health;
mod helpers;
mod once;
mod reset;
mod sendgrid;
mod templates;
