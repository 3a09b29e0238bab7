//! Shared building blocks of the GitTix services.
//!
//! Each module owns one concern; services compose them in their own `app.rs`.

pub mod auth;
pub mod bus;
pub mod bus_permissions;
pub mod change;
pub mod config;
pub mod error;
pub mod events;
pub mod health;
pub mod http;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod money;
pub mod mongo;
pub mod observe;
pub mod openapi;
pub mod otlp;
pub mod outbox;
pub mod paging;
pub mod redis;
pub mod redrive;
pub mod request_id;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod trace_context;
