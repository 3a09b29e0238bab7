//! The auth service: accounts and sessions. Everything but wiring lives here, so the
//! tests run exactly what the binary runs.

mod app;
mod config;
mod domain;
mod http;
mod limits;
mod state;
mod store;

pub use app::App;
pub use config::{Config, SessionConfig};
pub use limits::LimitsConfig;
