//! Shared building blocks of the GitTix services.
//!
//! Each module owns one concern; services compose them in their own `app.rs`.

pub mod auth;
pub mod config;
pub mod error;
pub mod health;
pub mod http;
pub mod mongo;
pub mod shutdown;
pub mod telemetry;
