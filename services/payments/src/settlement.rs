//! Every successful charge either completes its order or is refunded.
//!
//! [`Settlement::reconcile`] applies [`crate::domain::decide`] to every payment of an
//! order; it runs after each thing that can change the answer (a payment recorded, an
//! order event applied), so whichever of two racing writes comes second sees the other.
//! The worker ([`Settlement::spawn_worker`]) then does what needs Stripe: refunds, retried
//! with backoff until Stripe confirms, and cancellations of open intents. Its work is
//! kept in Mongo (`refund_pending` payments, intents with `closeDue`), so a restart
//! loses nothing; Stripe idempotency keys derived from the payment make a repeated
//! attempt (after a crash, or by two replicas) the same refund.

use std::sync::Arc;
use std::time::Duration;

use bson::oid::ObjectId;
use chrono::Utc;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::domain::{
    Decision, IntentId, OrderId, OrderOutcome, OrderStatus, PaymentFacts, RefundReason, decide,
    retry_delay,
};
use crate::gateway::{Gateway, GatewayError, IntentState, RefundOutcome, RefundRequest};
use crate::store::{Intent, Payment, RefundRecord, Store};

/// How long a worker holds a refund or cancellation it is working on (longer than any
/// Stripe call may take).
const LEASE: chrono::Duration = chrono::Duration::seconds(60);

/// The longest one pass of the worker may take (several Stripe calls, each bounded by
/// the Stripe timeout).
const WORK_TIMEOUT: Duration = Duration::from_secs(120);

/// How often the worker looks for due work when nothing wakes it.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Settlement {
    pub store: Store,
    pub gateway: Gateway,
    /// The currency every order is priced in.
    pub currency: String,
    wake: Arc<Notify>,
}

impl Settlement {
    pub fn new(store: Store, gateway: Gateway, currency: String) -> Self {
        Self {
            store,
            gateway,
            currency,
            wake: Arc::default(),
        }
    }

    /// Records a successful intent (once, with `payment.created`) and decides the
    /// order's payments again. Returns the payment as it stands and whether it is new.
    pub async fn record(
        &self,
        order_id: &OrderId,
        stripe_id: &IntentId,
        amount_cents: i64,
        currency: &str,
    ) -> anyhow::Result<(Payment, bool)> {
        let (payment, created) = self
            .store
            .record(Payment::new(
                order_id.clone(),
                stripe_id.clone(),
                amount_cents,
                currency,
            ))
            .await?;
        if created {
            tracing::info!(order.id = order_id.as_str(), payment.id = %payment.id, stripe.id = stripe_id.as_str(), "payment recorded");
        }
        if let Ok(id) = order_id.as_str().parse::<ObjectId>() {
            self.reconcile(id).await?;
        }
        let payment = self
            .store
            .payments_of(order_id)
            .await?
            .into_iter()
            .find(|p| p.id == payment.id)
            .unwrap_or(payment);
        Ok((payment, created))
    }

    /// Settles or refunds the order's succeeded payments as the replica's order says, and
    /// closes its open intents once the order is over.
    pub async fn reconcile(&self, order_id: ObjectId) -> anyhow::Result<()> {
        let order = self.store.find_order(order_id).await?;
        let id = OrderId::from(order_id);
        let payments = self.store.payments_of(&id).await?;
        let outcome = match order.as_ref().map(|o| o.status) {
            Some(OrderStatus::Cancelled) => OrderOutcome::Cancelled,
            Some(OrderStatus::Complete) => OrderOutcome::Completed {
                payment_id: order.as_ref().and_then(|o| o.payment_id.clone()),
            },
            _ => OrderOutcome::Open,
        };
        let price = order
            .as_ref()
            .map(|o| (o.price_cents, self.currency.as_str()));
        let facts: Vec<PaymentFacts> = payments
            .iter()
            .map(|p| PaymentFacts {
                id: p.id.to_hex(),
                state: p.state,
                amount_cents: p.amount_cents,
                currency: p.currency.clone(),
            })
            .collect();
        let mut wake = false;
        for (payment, decision) in payments.iter().zip(decide(&outcome, price, &facts)) {
            match decision {
                Decision::Keep => {}
                Decision::Settle => {
                    if self.store.settle(payment).await? {
                        tracing::info!(order.id = id.as_str(), payment.id = %payment.id, "payment settled");
                    }
                }
                Decision::Refund(reason) => {
                    if self.store.request_refund(payment, reason).await? {
                        tracing::warn!(order.id = id.as_str(), payment.id = %payment.id, stripe.id = payment.stripe_id.as_str(), reason = reason.as_str(), "payment to be refunded");
                        wake = true;
                    }
                }
            }
        }
        if !matches!(outcome, OrderOutcome::Open)
            && self.store.close_open_intents(&id, None).await? > 0
        {
            wake = true;
        }
        if wake {
            self.wake();
        }
        Ok(())
    }

    /// Marks the order's open intents of other cards for cancellation: the buyer starts
    /// another attempt.
    pub async fn close_other_intents(
        &self,
        order_id: &OrderId,
        method: &str,
    ) -> anyhow::Result<()> {
        if self
            .store
            .close_open_intents(order_id, Some(method))
            .await?
            > 0
        {
            self.wake();
        }
        Ok(())
    }

    /// Lets the worker look for due work now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn spawn_worker(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move { self.run(shutdown).await })
    }

    async fn run(self, shutdown: CancellationToken) {
        loop {
            // Each pass bounded: a store or Stripe that stopped answering must not stop
            // the worker for good (its leases let the next pass take the work again).
            match tokio::time::timeout(WORK_TIMEOUT, self.refund_due()).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(error = ?err, "refund worker failed; retrying"),
                Err(_) => tracing::warn!("refund pass took longer than {WORK_TIMEOUT:?}; retrying"),
            }
            match tokio::time::timeout(WORK_TIMEOUT, self.close_due()).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::warn!(error = ?err, "intent cancellation worker failed; retrying");
                }
                Err(_) => tracing::warn!("intent pass took longer than {WORK_TIMEOUT:?}; retrying"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {},
                () = tokio::time::sleep(SWEEP_INTERVAL) => {},
            }
        }
    }

    async fn refund_due(&self) -> anyhow::Result<()> {
        for payment in self.store.due_refunds(20).await? {
            let Some(refund) = payment.refund.clone() else {
                continue;
            };
            if self
                .store
                .claim_refund(&payment, &refund, Utc::now() + LEASE)
                .await?
            {
                self.refund(&payment, &refund).await?;
            }
        }
        Ok(())
    }

    /// One attempt at a refund: create it (or, once Stripe has named it, look it up),
    /// then record what Stripe said.
    async fn refund(&self, payment: &Payment, refund: &RefundRecord) -> anyhow::Result<()> {
        let result = match &refund.refund_id {
            Some(refund_id) => self.gateway.retrieve_refund(refund_id).await,
            None => {
                self.gateway
                    .refund(&RefundRequest {
                        payment_id: payment.id.to_hex(),
                        order_id: payment.order_id.clone(),
                        stripe_id: payment.stripe_id.clone(),
                        amount_cents: payment.amount_cents,
                        duplicate: refund.reason == RefundReason::Duplicate,
                    })
                    .await
            }
        };
        let attempts = u32::try_from(refund.attempts).unwrap_or(u32::MAX);
        let next = Utc::now() + chrono::Duration::from_std(retry_delay(attempts)).unwrap_or(LEASE);
        match result {
            Ok(RefundOutcome::Succeeded { refund_id }) => {
                if self
                    .store
                    .confirm_refund(payment, refund, &refund_id)
                    .await?
                {
                    tracing::info!(payment.id = %payment.id, order.id = payment.order_id.as_str(), refund.id = refund_id, "refund confirmed");
                }
            }
            Ok(RefundOutcome::Pending { refund_id }) => {
                self.store
                    .retry_refund(payment, refund, next, Some(&refund_id), "pending at Stripe")
                    .await?;
            }
            Ok(RefundOutcome::Failed { refund_id, reason }) => {
                tracing::error!(payment.id = %payment.id, order.id = payment.order_id.as_str(), refund.id = refund_id, reason, "Stripe failed the refund; it needs a person");
                self.store
                    .fail_refund(payment, refund, &refund_id, &reason)
                    .await?;
            }
            Err(err) => {
                let level_error = matches!(err, GatewayError::Rejected { .. });
                if level_error {
                    tracing::error!(payment.id = %payment.id, error = %err, attempts = refund.attempts + 1, "refund refused; retrying");
                } else {
                    tracing::warn!(payment.id = %payment.id, error = %err, attempts = refund.attempts + 1, "refund failed; retrying");
                }
                self.store
                    .retry_refund(payment, refund, next, None, &err.to_string())
                    .await?;
            }
        }
        Ok(())
    }

    async fn close_due(&self) -> anyhow::Result<()> {
        for intent in self.store.due_closes(20).await? {
            if self.store.claim_close(&intent, Utc::now() + LEASE).await? {
                self.close(&intent).await?;
            }
        }
        Ok(())
    }

    /// One attempt at cancelling an open intent. One that succeeded meanwhile is
    /// recorded, and refunded by the usual rules.
    async fn close(&self, intent: &Intent) -> anyhow::Result<()> {
        match self.gateway.cancel_intent(intent.id.as_str()).await {
            Ok(IntentState::Canceled) => {
                tracing::info!(
                    stripe.id = intent.id.as_str(),
                    order.id = intent.order_id.as_str(),
                    "open intent cancelled"
                );
                self.store.set_intent_status(&intent.id, "canceled").await?;
            }
            Ok(IntentState::Succeeded {
                amount_cents,
                currency,
            }) => {
                tracing::warn!(
                    stripe.id = intent.id.as_str(),
                    order.id = intent.order_id.as_str(),
                    "intent to cancel had succeeded; recording it"
                );
                self.record(&intent.order_id, &intent.id, amount_cents, &currency)
                    .await?;
                self.store
                    .set_intent_status(&intent.id, "succeeded")
                    .await?;
            }
            Ok(IntentState::Other(status)) => {
                self.store.set_intent_status(&intent.id, &status).await?;
                self.retry_close(intent).await?;
            }
            Err(err) => {
                tracing::warn!(stripe.id = intent.id.as_str(), error = %err, "cannot cancel the intent yet; retrying");
                self.retry_close(intent).await?;
            }
        }
        Ok(())
    }

    async fn retry_close(&self, intent: &Intent) -> anyhow::Result<()> {
        let attempts = u32::try_from(intent.attempts).unwrap_or(u32::MAX);
        let next = Utc::now() + chrono::Duration::from_std(retry_delay(attempts)).unwrap_or(LEASE);
        self.store.retry_close(intent, next).await?;
        Ok(())
    }
}
