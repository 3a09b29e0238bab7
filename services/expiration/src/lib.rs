//! The expiration service: when an order's payment window closes, it publishes
//! `expiration.complete`. It owns a Redis holding the schedule, and serves only health.

mod app;
mod config;
mod listeners;
mod schedule;
mod worker;

pub use app::App;
pub use config::Config;
pub use schedule::Schedule;
