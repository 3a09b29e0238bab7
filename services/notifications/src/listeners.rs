//! The events notifications follows: replicas of what emails show, and the events that
//! send them. Events of different subjects are not ordered: an email whose records have
//! not arrived yet is retried until they have. Whether the email is of any use still (the
//! event's age, a link's or a reservation's expiry) is decided first, before any record is
//! looked up: an expired event whose records never arrive is acked, not retried until it
//! is dead-lettered.

use std::time::Duration;

use common::bus::Bus;
use common::events::{
    Envelope, OrderCancelled, OrderCompleted, OrderCreated, OrderSnapshot, PaymentCreated,
    PaymentRefunded, TicketCreated, TicketSnapshot, TicketUpdated, UserCreated,
    UserPasswordResetRequested,
};
use common::listener::{Outcome, Subscriptions};
use common::shutdown::BackgroundTasks;

use crate::delivery::{Occasion, Postman};
use crate::emails::{self, Links};
use crate::replica::{OrderReplica, PaymentReplica, TicketReplica, UserReplica};
use crate::templates::Template;

pub const SERVICE: &str = "notifications";

/// How soon an email whose records are missing looks again (the listener backs off from
/// there). Not tunable: it only sets the first retry; the listener's exponential back-off
/// and `max_deliver` decide how long an email waits for its records.
const WAIT_FOR_RECORDS: Duration = Duration::from_millis(500);

/// What every handler shares.
#[derive(Clone)]
pub struct Notifier {
    pub postman: Postman,
    pub links: Links,
}

pub async fn spawn_all(
    bus: &Bus,
    notifier: &Notifier,
    tasks: &mut BackgroundTasks,
) -> anyhow::Result<()> {
    Subscriptions::new(bus, SERVICE, notifier.clone(), tasks)
        .on(user_created)
        .await?
        .on(password_reset_requested)
        .await?
        .on(ticket_created)
        .await?
        .on(ticket_updated)
        .await?
        .on(ticket_snapshot)
        .await?
        .on(order_snapshot)
        .await?
        .on(order_created)
        .await?
        .on(order_completed)
        .await?
        .on(order_cancelled)
        .await?
        .on(payment_created)
        .await?
        .on(payment_refunded)
        .await?;
    Ok(())
}

/// Unwraps a record, or answers the listener: a missing record is not there *yet*; a
/// failed read is retried.
macro_rules! need {
    ($lookup:expr, $what:literal, $id:expr) => {
        match $lookup.await {
            Ok(Some(record)) => record,
            Ok(None) => {
                tracing::debug!(record = $what, id = %$id, "record not here yet; will retry");
                return Outcome::Retry(WAIT_FOR_RECORDS);
            }
            Err(err) => return err.into(),
        }
    };
}

async fn user_created(n: Notifier, event: Envelope<UserCreated>) -> Outcome {
    let event_id = event.id.to_string();
    let data = &event.data;
    let user = UserReplica {
        id: data.id.clone(),
        email: data.email.clone(),
        version: data.version,
    };
    if let Err(err) = n.postman.store.put_user(&user).await {
        return err.into();
    }
    let vars = emails::welcome(&user.email, &n.links);
    n.postman
        .deliver(
            Occasion::of(&event, &event_id),
            Template::Welcome,
            &user.email,
            vars,
        )
        .await
}

async fn password_reset_requested(
    n: Notifier,
    event: Envelope<UserPasswordResetRequested>,
) -> Outcome {
    let event_id = event.id.to_string();
    let data = &event.data;
    // A link past its expiry is of no use.
    let occasion = Occasion::of(&event, &event_id).useful_until(data.expires_at);
    if n.postman.useless(&occasion, Template::PasswordReset) {
        return Outcome::Ack;
    }
    // The address the event carries (auth fills it in), else the replica's (older events):
    // the link reaches a user this service has no record of.
    let to = match data.email.as_deref().map(str::trim) {
        Some(email) if !email.is_empty() => email.to_owned(),
        _ => need!(n.postman.store.user(&data.user_id), "user", data.user_id).email,
    };
    let vars = emails::password_reset(&data.token, data.expires_at, &n.links);
    n.postman
        .deliver(occasion, Template::PasswordReset, &to, vars)
        .await
}

async fn ticket_created(n: Notifier, event: Envelope<TicketCreated>) -> Outcome {
    let data = &event.data;
    keep_ticket(&n, &data.id, &data.title, data.price_cents, data.version).await
}

async fn ticket_updated(n: Notifier, event: Envelope<TicketUpdated>) -> Outcome {
    let data = &event.data;
    keep_ticket(&n, &data.id, &data.title, data.price_cents, data.version).await
}

/// A ticket's whole state, which tickets publishes when a replica (orders') lost track of
/// it: a record this replica missed arrives this way too.
async fn ticket_snapshot(n: Notifier, event: Envelope<TicketSnapshot>) -> Outcome {
    let data = &event.data;
    keep_ticket(&n, &data.id, &data.title, data.price_cents, data.version).await
}

/// An order's whole state (published when a replica lost track of it): what
/// `order.created` would have recorded. Sends nothing.
async fn order_snapshot(n: Notifier, event: Envelope<OrderSnapshot>) -> Outcome {
    let data = &event.data;
    let order = OrderReplica {
        id: data.id.clone(),
        user_id: data.user_id.clone(),
        ticket_id: data.ticket.id.clone(),
        price_cents: data.ticket.price_cents,
        expires_at: data.expires_at,
    };
    match n.postman.store.put_order(&order).await {
        Ok(()) => Outcome::Ack,
        Err(err) => err.into(),
    }
}

/// Records a ticket's title and price from whichever of its events brought them. Only the
/// newest version is kept: the title an email shows is the latest known.
async fn keep_ticket(
    n: &Notifier,
    id: &str,
    title: &str,
    price_cents: i64,
    version: i64,
) -> Outcome {
    let ticket = TicketReplica {
        id: id.to_owned(),
        title: title.to_owned(),
        price_cents,
        version,
    };
    match n.postman.store.put_ticket(&ticket).await {
        Ok(()) => Outcome::Ack,
        Err(err) => err.into(),
    }
}

async fn payment_created(n: Notifier, event: Envelope<PaymentCreated>) -> Outcome {
    let data = &event.data;
    let payment = PaymentReplica {
        id: data.id.clone(),
        order_id: data.order_id.clone(),
        amount_cents: data.amount_cents,
        currency: data.currency.clone(),
        created_at: event.occurred_at,
    };
    match n.postman.store.put_payment(&payment).await {
        Ok(()) => Outcome::Ack,
        Err(err) => err.into(),
    }
}

async fn order_created(n: Notifier, event: Envelope<OrderCreated>) -> Outcome {
    let event_id = event.id.to_string();
    let data = &event.data;
    let order = OrderReplica {
        id: data.id.clone(),
        user_id: data.user_id.clone(),
        ticket_id: data.ticket.id.clone(),
        price_cents: data.ticket.price_cents,
        expires_at: data.expires_at,
    };
    let store = &n.postman.store;
    if let Err(err) = store.put_order(&order).await {
        return err.into();
    }
    // Past its pay-by time the reservation has lapsed.
    let occasion = Occasion::of(&event, &event_id).useful_until(order.expires_at);
    if n.postman.useless(&occasion, Template::Reservation) {
        return Outcome::Ack;
    }
    let user = need!(store.user(&order.user_id), "user", order.user_id);
    let ticket = need!(store.ticket(&order.ticket_id), "ticket", order.ticket_id);
    let vars = emails::reservation(&order, &ticket, &n.links);
    n.postman
        .deliver(occasion, Template::Reservation, &user.email, vars)
        .await
}

async fn order_completed(n: Notifier, event: Envelope<OrderCompleted>) -> Outcome {
    let event_id = event.id.to_string();
    let data = &event.data;
    let store = &n.postman.store;
    let occasion = Occasion::of(&event, &event_id);
    if n.postman.useless(&occasion, Template::Receipt) {
        return Outcome::Ack;
    }
    let order = need!(store.order(&data.id), "order", data.id);
    let payment = match &data.payment_id {
        Some(payment_id) => need!(store.payment(payment_id), "payment", payment_id),
        // Events from before `paymentId`: the order's payment.
        None => need!(store.payment_of_order(&order.id), "payment", order.id),
    };
    let user = need!(store.user(&order.user_id), "user", order.user_id);
    let ticket = need!(store.ticket(&order.ticket_id), "ticket", order.ticket_id);
    let vars = emails::receipt(&order, &ticket, &payment, event.occurred_at, &n.links);
    n.postman
        .deliver(occasion, Template::Receipt, &user.email, vars)
        .await
}

async fn order_cancelled(n: Notifier, event: Envelope<OrderCancelled>) -> Outcome {
    let event_id = event.id.to_string();
    let data = &event.data;
    let store = &n.postman.store;
    let occasion = Occasion::of(&event, &event_id);
    if n.postman.useless(&occasion, Template::OrderCancelled) {
        return Outcome::Ack;
    }
    let order = need!(store.order(&data.id), "order", data.id);
    let user = need!(store.user(&order.user_id), "user", order.user_id);
    let ticket = need!(store.ticket(&order.ticket_id), "ticket", order.ticket_id);
    let vars = emails::order_cancelled(&order, &ticket, data.reason, &n.links);
    n.postman
        .deliver(occasion, Template::OrderCancelled, &user.email, vars)
        .await
}

async fn payment_refunded(n: Notifier, event: Envelope<PaymentRefunded>) -> Outcome {
    let event_id = event.id.to_string();
    let data = &event.data;
    let store = &n.postman.store;
    let occasion = Occasion::of(&event, &event_id);
    if n.postman.useless(&occasion, Template::Refund) {
        return Outcome::Ack;
    }
    let order = need!(store.order(&data.order_id), "order", data.order_id);
    let user = need!(store.user(&order.user_id), "user", order.user_id);
    let ticket = need!(store.ticket(&order.ticket_id), "ticket", order.ticket_id);
    let vars = emails::refund(
        &order,
        &ticket,
        data.amount_cents,
        &data.currency,
        &data.reason,
        &n.links,
    );
    n.postman
        .deliver(occasion, Template::Refund, &user.email, vars)
        .await
}
