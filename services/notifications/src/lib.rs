//! The notifications service: emails users when something happens to their account, their
//! orders and their payments, once per event. It owns a Mongo database (replicas of what
//! emails show, and one delivery record per email) and a Redis (compiled templates), and
//! publishes nothing.

mod app;
mod config;
mod delivery;
pub mod emails;
mod listeners;
mod replica;
pub mod store;
pub mod templates;
pub mod transport;

pub use app::App;
pub use config::{Config, TransportConfig};
