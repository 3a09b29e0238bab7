//! The payments service: charges orders through Stripe PaymentIntents, confirmed either
//! synchronously or by Stripe's webhook, announces each payment once, and refunds every
//! successful charge that does not complete its order.

mod app;
mod config;
mod domain;
mod gateway;
mod http;
mod listeners;
mod replica;
mod settlement;
mod state;
mod store;
mod webhook;

pub use app::App;
pub use config::{Config, GatewayConfig};
pub use webhook::sign as sign_webhook;
