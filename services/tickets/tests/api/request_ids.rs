//! The id of the request behind an event follows it into the events its handling causes.

use std::time::Duration;

use common::events::{OrderCreated, OrderTicket};
use common::outbox::PendingEvent;
use testkit::{eventually, new_user_id, stored_messages};

use crate::helpers::spawn_app;

#[tokio::test]
async fn an_orders_request_id_follows_into_the_ticket_update_it_causes() {
    let app = spawn_app().await;
    let (_, ticket) = app.listed_ticket().await;
    // order.created as orders publishes it while handling the request `purchase-7`.
    let order = OrderCreated {
        id: bson::oid::ObjectId::new().to_hex(),
        user_id: new_user_id(),
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(15),
        ticket: OrderTicket {
            id: ticket.clone(),
            price_cents: 2000,
        },
        version: 0,
    };
    let event = common::request_id::scope(Some("purchase-7".into()), async {
        PendingEvent::new(order)
    })
    .await;
    app.bus.publish_pending(&event).await.unwrap();

    let reserved = eventually(
        "ticket.updated with a request id",
        Duration::from_secs(10),
        || async {
            let ids: Vec<String> = stored_messages(&app.bus, &app.bus.subject("ticket.updated"))
                .await
                .iter()
                .filter_map(|m| {
                    let header = m.headers.as_ref()?.get(common::request_id::HEADER)?;
                    Some(header.as_str().to_owned())
                })
                .collect();
            (!ids.is_empty()).then_some(ids)
        },
    )
    .await;
    assert_eq!(reserved, ["purchase-7"]);
}
