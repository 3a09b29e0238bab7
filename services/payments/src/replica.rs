//! The payments service's copy of orders, kept from order events (`listeners`): what
//! decides whether an order may be paid and what becomes of its payments.

use bson::oid::ObjectId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::OrderStatus;

/// What the payments service knows of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderReplica {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: String,
    pub status: OrderStatus,
    pub price_cents: i64,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub expires_at: DateTime<Utc>,
    pub version: i64,
    /// The payment that completed the order, from `order.completed`.
    #[serde(default)]
    pub payment_id: Option<String>,
}
