//! Integration tests of the auth service: the real router on a real port against the
//! MongoDB-compatible test server, one database per test.
#![allow(clippy::unwrap_used)]

mod bans;
mod config;
mod events;
mod health;
mod helpers;
mod http_errors;
mod keys;
mod limits;
mod openapi;
mod password_reset;
mod refresh;
mod session;
mod signin;
mod signup;
