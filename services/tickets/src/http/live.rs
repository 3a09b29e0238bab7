//! `GET /api/tickets/{id}/events`: a ticket's availability as Server-Sent Events, for
//! pages that show it live (fed by [`crate::live`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use common::error::{ApiError, ApiResult, ErrorBody};
use common::http::ApiPath;
use common::http::{not_found, parse_id};
use common::openapi::Unavailable;
use futures::Stream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use crate::live::Change;
use crate::state::AppState;

/// A comment line this often keeps proxies and browsers from timing the stream out.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /api/tickets/{id}/events`: public. The first message is the ticket's current
/// state, then one per change; each message's id is the ticket's version.
#[utoipa::path(
    get,
    path = "/api/tickets/{id}/events",
    tag = "tickets",
    summary = "A ticket's availability, live (Server-Sent Events)",
    description = "A `text/event-stream` that stays open: first `event: state` with the \
        ticket's current `{\"id\", \"status\", \"version\"}` (`status` is `available`, \
        `reserved`, `sold` or `removed`, as `GET /api/tickets/{id}` says it), then `event: update` with the same data at each change, \
        whichever replica made it. Each message's `id` is the ticket's version: a browser \
        reconnecting with `Last-Event-ID` gets only what is newer. A comment every 15 s keeps \
        it open; a client too slow to read is disconnected (reconnect); the stream ends when \
        the service stops. 503 also when this process already serves \
        `LIVE_STREAMS_MAX` streams.",
    params(
        ("id" = String, Path, description = "The ticket's id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The last version seen, when reconnecting"),
    ),
    responses(
        (status = 200, description = "The stream of the ticket's states", content_type = "text/event-stream", body = String),
        (status = 400, description = "The id cannot be read (not UTF-8)", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        Unavailable,
    ),
)]
pub async fn ticket_events(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = parse_id(&id, "Ticket")?;
    let slot = state.live.slot().ok_or_else(|| {
        ApiError::Unavailable("Too many live streams open; please try again later".into())
    })?;
    // Changes from now on, before reading: none can fall between the read and the stream.
    let changes = state.live.subscribe();
    let ticket = state
        .store
        .find(id)
        .await?
        .ok_or_else(|| not_found("Ticket"))?;
    let current = Change::of(&ticket);
    let seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let live = Live {
        // A browser back after a short break that saw this version already gets only what
        // is new.
        first: (seen != Some(current.version)).then(|| current.clone()),
        last: current.version,
        id: current.id,
        changes,
        stop: state.live.stopped(),
        _slot: slot,
    };
    let sse = Sse::new(live.into_stream()).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    Ok((
        // Proxies (nginx) pass each message on at once instead of buffering the body.
        [(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        )],
        sse,
    )
        .into_response())
}

/// One open stream.
struct Live {
    first: Option<Change>,
    /// The newest version sent (or known to the browser).
    last: i64,
    id: String,
    changes: broadcast::Receiver<Arc<Change>>,
    stop: CancellationToken,
    /// The stream's place under `LIVE_STREAMS_MAX`, freed when it ends.
    _slot: OwnedSemaphorePermit,
}

impl Live {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
        futures::stream::unfold(self, |mut live| async move {
            if let Some(first) = live.first.take() {
                let event = message("state", &first);
                return Some((Ok(event), live));
            }
            let change = live.next_change().await?;
            Some((Ok(message("update", &change)), live))
        })
    }

    /// The next change of this ticket newer than what was sent; `None` ends the stream.
    async fn next_change(&mut self) -> Option<Arc<Change>> {
        loop {
            let received = tokio::select! {
                () = self.stop.cancelled() => return None,
                received = self.changes.recv() => received,
            };
            match received {
                Ok(change) if change.id == self.id && change.version > self.last => {
                    self.last = change.version;
                    return Some(change);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(
                        ticket.id = self.id,
                        missed,
                        "live stream fell behind; closing it"
                    );
                    return None;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

fn message(kind: &str, change: &Change) -> Event {
    let data = serde_json::to_string(change).unwrap_or_default();
    Event::default()
        .event(kind)
        .id(change.version.to_string())
        .data(data)
}
