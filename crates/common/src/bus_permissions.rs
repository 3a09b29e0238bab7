//! Who may publish and consume what on the bus: the one source of the NATS permission
//! model.
//!
//! [`SERVICES`] lists, per service, the event subjects it publishes and those it consumes.
//! The code is held to it: a [`Bus`](crate::bus::Bus) connected as one of these services
//! refuses to publish anything else, and its listeners refuse to consume anything else,
//! so a service's own tests fail when its code and this table part. From the table,
//! [`nats_users`] derives each service's NATS user permissions, committed as
//! `infra/nats/permissions.json` (a test fails when that file is stale) and rendered into
//! the local stack's NATS config (`scripts/lib.sh`) and the cluster's (infra/k8s).
//!
//! What a service user may do, and nothing else (NATS denies whatever is not allowed):
//! publish its own events and its own dead letters (`<prefix>.dead.<service>.>`); look up
//! the stream and create it when it is missing (never update it: see [`ADMIN`]); create
//! its own durable consumers, each bound by the create subject to the one event subject
//! it consumes (so no consumer on another subject, nor one without a filter, nor an
//! ephemeral one); pull from and ack them; receive replies on its own inbox prefix
//! (`_INBOX_<service>`), so no one reads another's pulled messages or acks; and subscribe
//! to those of its own events it follows live ([`ServiceRoutes::watches`]). Reading
//! messages by sequence (`STREAM.MSG.GET`, `DIRECT.GET`), purging and deleting are not
//! allowed. The password-reset subject, which carries a reset token, is consumed by
//! notifications alone.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::events::{
    Event, ExpirationComplete, OrderCancelled, OrderCompleted, OrderCreated, OrderResyncRequested,
    OrderSnapshot, PaymentCreated, PaymentRefunded, TicketCreated, TicketRemoved,
    TicketResyncRequested, TicketSnapshot, TicketUpdated, UserBanned, UserCreated,
    UserPasswordResetRequested, UserUnbanned,
};
use crate::listener::durable_name;

/// What one service publishes and consumes (event subjects, without the prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceRoutes {
    pub service: &'static str,
    pub publishes: &'static [&'static str],
    pub consumes: &'static [&'static str],
    /// Own events it also follows live as they are published (a plain NATS subscription,
    /// no stream history): tickets' live availability feed.
    pub watches: &'static [&'static str],
}

const fn s<E: Event>() -> &'static str {
    E::SUBJECT
}

/// Every service that uses the bus. Consuming a subject here is what lets the service
/// create its durable consumer on it; publishing one, what lets it store it.
pub const SERVICES: &[ServiceRoutes] = &[
    ServiceRoutes {
        service: "auth",
        publishes: &[
            s::<UserCreated>(),
            s::<UserBanned>(),
            s::<UserUnbanned>(),
            s::<UserPasswordResetRequested>(),
        ],
        // Its own bans, so that every replica refuses a banned user's session.
        consumes: &[s::<UserBanned>(), s::<UserUnbanned>()],
        watches: &[],
    },
    ServiceRoutes {
        service: "tickets",
        publishes: &[
            s::<TicketCreated>(),
            s::<TicketUpdated>(),
            s::<TicketRemoved>(),
            s::<TicketSnapshot>(),
            s::<OrderResyncRequested>(),
        ],
        consumes: &[
            s::<OrderCreated>(),
            s::<OrderCancelled>(),
            s::<OrderCompleted>(),
            s::<OrderSnapshot>(),
            s::<TicketResyncRequested>(),
            s::<UserBanned>(),
            s::<UserUnbanned>(),
        ],
        // The live feed of a ticket's availability (`GET /api/tickets/{id}/events`).
        watches: &[
            s::<TicketUpdated>(),
            s::<TicketRemoved>(),
            s::<TicketSnapshot>(),
        ],
    },
    ServiceRoutes {
        service: "orders",
        publishes: &[
            s::<OrderCreated>(),
            s::<OrderCancelled>(),
            s::<OrderCompleted>(),
            s::<OrderSnapshot>(),
            s::<TicketResyncRequested>(),
        ],
        consumes: &[
            s::<TicketCreated>(),
            s::<TicketUpdated>(),
            s::<TicketSnapshot>(),
            s::<TicketRemoved>(),
            s::<ExpirationComplete>(),
            s::<PaymentCreated>(),
            s::<PaymentRefunded>(),
            s::<OrderResyncRequested>(),
            s::<UserBanned>(),
            s::<UserUnbanned>(),
        ],
        watches: &[],
    },
    ServiceRoutes {
        service: "expiration",
        publishes: &[s::<ExpirationComplete>()],
        consumes: &[
            s::<OrderCreated>(),
            s::<OrderCancelled>(),
            s::<OrderCompleted>(),
        ],
        watches: &[],
    },
    ServiceRoutes {
        service: "payments",
        publishes: &[
            s::<PaymentCreated>(),
            s::<PaymentRefunded>(),
            s::<OrderResyncRequested>(),
        ],
        consumes: &[
            s::<OrderCreated>(),
            s::<OrderCancelled>(),
            s::<OrderCompleted>(),
            s::<OrderSnapshot>(),
            s::<UserBanned>(),
            s::<UserUnbanned>(),
        ],
        watches: &[],
    },
    ServiceRoutes {
        service: "notifications",
        publishes: &[],
        consumes: &[
            s::<UserCreated>(),
            s::<UserPasswordResetRequested>(),
            s::<TicketCreated>(),
            s::<TicketUpdated>(),
            s::<TicketSnapshot>(),
            s::<OrderCreated>(),
            s::<OrderSnapshot>(),
            s::<OrderCompleted>(),
            s::<OrderCancelled>(),
            s::<PaymentCreated>(),
            s::<PaymentRefunded>(),
        ],
        watches: &[],
    },
];

/// The operator's user (`gittix redrive`, `gittix stream`, the fault harness's dead-letter
/// check): reads dead letters, republishes them on any subject, deletes them, and alone
/// may update the stream's settings.
pub const ADMIN: &str = "admin";

/// The routes of `service`, if it is one of [`SERVICES`].
pub fn of(service: &str) -> Option<&'static ServiceRoutes> {
    SERVICES.iter().find(|routes| routes.service == service)
}

impl ServiceRoutes {
    pub fn may_publish(&self, event_subject: &str) -> bool {
        self.publishes.contains(&event_subject)
    }

    pub fn may_consume(&self, event_subject: &str) -> bool {
        self.consumes.contains(&event_subject)
    }

    pub fn may_watch(&self, event_subject: &str) -> bool {
        self.watches.contains(&event_subject)
    }
}

/// The inbox prefix of a NATS user: replies (JetStream API answers, publish acks, pulled
/// messages) come to subjects under it, which only that user may subscribe to.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

/// One NATS user's allow lists (everything else is denied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserPermissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// The NATS users of a deployment whose stream is `stream` and subject prefix `prefix`:
/// one per service, and [`ADMIN`].
pub fn nats_users(stream: &str, prefix: &str) -> BTreeMap<String, UserPermissions> {
    let api = "$JS.API";
    let mut users = BTreeMap::new();
    for routes in SERVICES {
        let service = routes.service;
        let mut publish: Vec<String> = routes
            .publishes
            .iter()
            .map(|subject| format!("{prefix}.{subject}"))
            .collect();
        publish.push(format!("{prefix}.dead.{service}.>"));
        publish.push(format!("{api}.STREAM.INFO.{stream}"));
        publish.push(format!("{api}.STREAM.CREATE.{stream}"));
        for subject in routes.consumes {
            let consumer = durable_name(service, subject);
            publish.push(format!(
                "{api}.CONSUMER.CREATE.{stream}.{consumer}.{prefix}.{subject}"
            ));
            publish.push(format!("{api}.CONSUMER.INFO.{stream}.{consumer}"));
            publish.push(format!("{api}.CONSUMER.MSG.NEXT.{stream}.{consumer}"));
            publish.push(format!("$JS.ACK.{stream}.{consumer}.>"));
        }
        let mut subscribe = vec![format!("{}.>", inbox_prefix(service))];
        subscribe.extend(
            routes
                .watches
                .iter()
                .map(|subject| format!("{prefix}.{subject}")),
        );
        users.insert(service.to_owned(), UserPermissions { publish, subscribe });
    }
    users.insert(
        ADMIN.to_owned(),
        UserPermissions {
            publish: vec![
                // Redriving republishes a dead letter on its original subject.
                format!("{prefix}.>"),
                format!("{api}.STREAM.INFO.{stream}"),
                format!("{api}.STREAM.NAMES"),
                format!("{api}.STREAM.CREATE.{stream}"),
                format!("{api}.STREAM.UPDATE.{stream}"),
                format!("{api}.STREAM.MSG.DELETE.{stream}"),
                // The dead-letter reader is an ephemeral consumer, whose create subject
                // names no filter: only the operator may create one.
                format!("{api}.CONSUMER.CREATE.{stream}"),
                format!("{api}.CONSUMER.INFO.{stream}.*"),
                format!("{api}.CONSUMER.MSG.NEXT.{stream}.*"),
                format!("{api}.CONSUMER.DELETE.{stream}.*"),
                // Flow control of a push reader (the fault harness's).
                format!("$JS.FC.{stream}.>"),
            ],
            subscribe: vec![format!("{}.>", inbox_prefix(ADMIN))],
        },
    );
    users
}

/// The deployment's stream and prefix (the defaults of `EVENTS_STREAM` and
/// `EVENTS_SUBJECT_PREFIX`), for which `infra/nats/permissions.json` is written.
pub const DEPLOYED_STREAM: &str = "GITTIX";
pub const DEPLOYED_PREFIX: &str = "gittix";

/// The committed file's contents: `{"stream", "prefix", "users": {name: {publish,
/// subscribe}}}`, pretty-printed with a final newline.
pub fn permissions_json(stream: &str, prefix: &str) -> String {
    #[derive(Serialize)]
    struct File<'a> {
        #[serde(rename = "_comment")]
        comment: &'a str,
        stream: &'a str,
        prefix: &'a str,
        users: BTreeMap<String, UserPermissions>,
    }
    let file = File {
        comment: "Generated from crates/common/src/bus_permissions.rs: `cargo test -p common \
                  --lib bus_permissions` fails when this is stale; GITTIX_WRITE_PERMISSIONS=1 \
                  rewrites it. Allow lists: NATS denies everything else.",
        stream,
        prefix,
        users: nats_users(stream, prefix),
    };
    let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::events::ALL_SUBJECTS;

    #[test]
    fn the_committed_permissions_file_is_the_one_the_table_gives() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/nats/permissions.json"
        );
        let expected = permissions_json(DEPLOYED_STREAM, DEPLOYED_PREFIX);
        if std::env::var_os("GITTIX_WRITE_PERMISSIONS").is_some() {
            std::fs::write(path, &expected).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == expected,
            "infra/nats/permissions.json is stale: regenerate it with \
             `GITTIX_WRITE_PERMISSIONS=1 cargo test -p common --lib bus_permissions`"
        );
    }

    #[test]
    fn every_event_has_a_publisher_and_every_consumed_one_is_published() {
        for subject in ALL_SUBJECTS {
            assert!(
                SERVICES.iter().any(|r| r.may_publish(subject)),
                "no service publishes {subject}"
            );
        }
        for routes in SERVICES {
            for subject in routes.publishes.iter().chain(routes.consumes) {
                assert!(ALL_SUBJECTS.contains(subject), "unknown subject {subject}");
            }
            for subject in routes.watches {
                assert!(routes.may_publish(subject), "{subject}: only own events");
            }
        }
    }

    #[test]
    fn only_notifications_reads_password_reset_tokens() {
        let reset = UserPasswordResetRequested::SUBJECT;
        let readers: Vec<_> = SERVICES
            .iter()
            .filter(|r| r.may_consume(reset))
            .map(|r| r.service)
            .collect();
        assert_eq!(readers, ["notifications"]);
        for (user, permissions) in nats_users("S", "p") {
            let reads_reset = permissions
                .publish
                .iter()
                .any(|p| p.starts_with("$JS.API.CONSUMER.CREATE") && p.ends_with(reset));
            assert_eq!(reads_reset, user == "notifications", "{user}");
        }
    }

    #[test]
    fn service_users_cannot_read_arbitrary_messages_or_change_the_stream() {
        for (user, permissions) in nats_users("S", "p") {
            if user == ADMIN {
                continue;
            }
            for subject in &permissions.publish {
                for forbidden in [
                    "MSG.GET",
                    "DIRECT",
                    "STREAM.UPDATE",
                    "DELETE",
                    "PURGE",
                    "p.>",
                ] {
                    assert!(!subject.contains(forbidden), "{user} may publish {subject}");
                }
                assert_ne!(subject, "$JS.API.CONSUMER.CREATE.S", "{user}: ephemeral");
                assert!(!subject.contains('*'), "{user}: wildcard in {subject}");
            }
            assert_eq!(permissions.subscribe[0], format!("_INBOX_{user}.>"));
            let routes = of(&user).unwrap();
            for subject in &permissions.subscribe[1..] {
                let event = subject.strip_prefix("p.").unwrap();
                assert!(
                    routes.may_watch(event) && routes.may_publish(event),
                    "{user}"
                );
            }
        }
    }
}
