//! The payments service: charges orders through Stripe PaymentIntents, confirmed either
//! synchronously or by Stripe's webhook, and announces each payment once.

mod app;
mod config;
mod gateway;
mod http;
mod listeners;
mod store;
mod webhook;

pub use app::App;
pub use config::{Config, GatewayConfig};
pub use webhook::sign as sign_webhook;
