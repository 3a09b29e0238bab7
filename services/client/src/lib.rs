//! The GitTix web client: server-rendered pages that call the services server-side.
//! Everything but wiring lives here, so the tests run exactly what the binary runs.

mod app;
mod backend;
mod config;
mod http;
mod state;

pub use app::App;
pub use config::{Config, ServiceUrls};
