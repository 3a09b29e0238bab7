//! Keeps the schedule in step with orders: scheduled on creation, dropped once the order
//! is paid or cancelled.

use std::sync::Arc;

use common::bus::Bus;
use common::events::{Envelope, OrderCancelled, OrderCompleted, OrderCreated};
use common::listener::{self, ListenerOptions, Outcome};
use common::shutdown::BackgroundTasks;
use tokio::sync::Notify;

use crate::schedule::Schedule;

pub const SERVICE: &str = "expiration";

pub async fn spawn_all(
    bus: &Bus,
    schedule: &Schedule,
    wake: Arc<Notify>,
    tasks: &mut BackgroundTasks,
) -> anyhow::Result<()> {
    let options = ListenerOptions::default();
    let token = tasks.token();
    let s = schedule.clone();
    tasks.push(
        listener::spawn(
            bus,
            SERVICE,
            options,
            move |e: Envelope<OrderCreated>| {
                let (s, wake) = (s.clone(), wake.clone());
                async move {
                    let result = s.add(&e.data.id, due_ms(e.data.expires_at)).await;
                    wake.notify_one();
                    done(result)
                }
            },
            token.clone(),
        )
        .await?,
    );
    let s = schedule.clone();
    tasks.push(
        listener::spawn(
            bus,
            SERVICE,
            options,
            move |e: Envelope<OrderCancelled>| {
                let s = s.clone();
                async move { done(s.remove(&e.data.id).await) }
            },
            token.clone(),
        )
        .await?,
    );
    let s = schedule.clone();
    tasks.push(
        listener::spawn(
            bus,
            SERVICE,
            options,
            move |e: Envelope<OrderCompleted>| {
                let s = s.clone();
                async move { done(s.remove(&e.data.id).await) }
            },
            token,
        )
        .await?,
    );
    Ok(())
}

/// Whole milliseconds, rounded up: a job never fires before `expiresAt`.
fn due_ms(expires_at: chrono::DateTime<chrono::Utc>) -> i64 {
    let micros = expires_at.timestamp_micros();
    micros.div_euclid(1000) + i64::from(micros.rem_euclid(1000) > 0)
}

fn done(result: redis::RedisResult<()>) -> Outcome {
    match result {
        Ok(()) => Outcome::Ack,
        Err(err) => Outcome::retry_after_error(&err.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn due_times_round_up_to_the_millisecond() {
        let at = |micros: i64| chrono::DateTime::from_timestamp_micros(micros).unwrap();
        assert_eq!(due_ms(at(5_000)), 5);
        assert_eq!(due_ms(at(5_001)), 6);
        assert_eq!(due_ms(at(5_999)), 6);
    }
}
