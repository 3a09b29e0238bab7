//! The orders service: a buyer reserves a ticket by creating an order, which holds the
//! ticket until it is paid, cancelled, or expires.

mod app;
mod config;
mod domain;
mod http;
mod listeners;
mod quota;
mod replica;
mod state;
mod store;
mod sweeper;
mod transitions;

pub use app::App;
pub use config::Config;
