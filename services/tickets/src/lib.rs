//! The tickets service: the catalogue of tickets for sale. It owns tickets; orders
//! reserve and release them through events.

mod app;
mod config;
mod domain;
mod http;
mod listeners;
mod live;
mod state;
mod store;

pub use app::App;
pub use config::Config;
