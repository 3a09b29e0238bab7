//! The notifications service's copies of other services' records, kept from their events
//! (`listeners`): what the emails show, never more. The record of a user is the address
//! `user.created` carried, so the service never asks auth.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserReplica {
    #[serde(rename = "_id")]
    pub id: String,
    pub email: String,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketReplica {
    #[serde(rename = "_id")]
    pub id: String,
    pub title: String,
    pub price_cents: i64,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderReplica {
    #[serde(rename = "_id")]
    pub id: String,
    pub user_id: String,
    pub ticket_id: String,
    pub price_cents: i64,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentReplica {
    #[serde(rename = "_id")]
    pub id: String,
    pub order_id: String,
    pub amount_cents: i64,
    pub currency: String,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
}
