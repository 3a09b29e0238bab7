//! Keeps the schedule in step with orders: scheduled on creation, dropped once the order
//! is paid or cancelled.

use std::sync::Arc;

use common::bus::Bus;
use common::events::{Envelope, OrderCancelled, OrderCompleted, OrderCreated};
use common::listener::{Outcome, Subscriptions};
use common::shutdown::BackgroundTasks;
use tokio::sync::Notify;

use crate::schedule::Schedule;

pub const SERVICE: &str = "expiration";

/// What the handlers share: the schedule, and the worker's wake-up for new jobs.
#[derive(Clone)]
struct Scheduler {
    schedule: Schedule,
    wake: Arc<Notify>,
}

pub async fn spawn_all(
    bus: &Bus,
    schedule: &Schedule,
    wake: Arc<Notify>,
    tasks: &mut BackgroundTasks,
) -> anyhow::Result<()> {
    let scheduler = Scheduler {
        schedule: schedule.clone(),
        wake,
    };
    Subscriptions::new(bus, SERVICE, scheduler, tasks)
        .on(order_created)
        .await?
        .on(order_cancelled)
        .await?
        .on(order_completed)
        .await?;
    Ok(())
}

async fn order_created(s: Scheduler, event: Envelope<OrderCreated>) -> Outcome {
    let result = s
        .schedule
        .add(&event.data.id, due_ms(event.data.expires_at))
        .await;
    s.wake.notify_one();
    done(result)
}

async fn order_cancelled(s: Scheduler, event: Envelope<OrderCancelled>) -> Outcome {
    done(s.schedule.remove(&event.data.id).await)
}

async fn order_completed(s: Scheduler, event: Envelope<OrderCompleted>) -> Outcome {
    done(s.schedule.remove(&event.data.id).await)
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
