//! What every page template shares, and the small formatting rules of the pages.

use chrono::{DateTime, Utc};

use crate::backend::{EventDetails, User};

/// The frame of every page: its title, the header's signed-in state and the extra
/// scripts the page needs.
pub struct Layout {
    pub title: String,
    pub user: Option<User>,
    /// False on error pages, which are rendered without asking who the visitor is.
    pub nav: bool,
    /// Loads Stripe.js with this publishable key (order pages with a pay form only).
    pub stripe_key: Option<String>,
    /// Reloads the page after this many seconds (while a payment is being confirmed).
    pub refresh_seconds: Option<u32>,
    /// Loads the order page's countdown script.
    pub countdown: bool,
    /// Loads the ticket page's live availability script.
    pub live_ticket: bool,
}

impl Layout {
    pub fn new(title: impl Into<String>, user: Option<User>) -> Self {
        Self {
            title: title.into(),
            user,
            nav: true,
            stripe_key: None,
            refresh_seconds: None,
            countdown: false,
            live_ticket: false,
        }
    }

    /// The frame of an error page: brand only.
    pub fn bare(title: impl Into<String>) -> Self {
        Self {
            nav: false,
            ..Self::new(title, None)
        }
    }
}

/// `19.9` → `$19.90`.
pub fn money(price: f64) -> String {
    format!("${price:.2}")
}

/// Seconds as `m:ss`, e.g. `14:05`.
pub fn clock(seconds: i64) -> String {
    let seconds = seconds.max(0);
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// A link to another page of a list: `base?cursor=…` (keeping a `limit` the visitor set).
pub fn page_href(base: &str, cursor: &str, limit: Option<u32>) -> String {
    match limit {
        Some(limit) => format!("{base}?limit={limit}&cursor={cursor}"),
        None => format!("{base}?cursor={cursor}"),
    }
}

/// A start time as the pages show it, in UTC: `Fri 1 May 2030, 20:00 UTC`.
pub fn when(at: DateTime<Utc>) -> String {
    at.format("%a %-d %b %Y, %H:%M UTC").to_string()
}

/// A ticket's event, ready to show; every part optional.
#[derive(Debug, Default)]
pub struct EventView {
    pub venue: Option<String>,
    pub city: Option<String>,
    /// `Fri 1 May 2030, 20:00 UTC`, and RFC 3339 for `<time datetime>`.
    pub when: Option<(String, String)>,
    /// `Section A · Row 3 · Seat 12`.
    pub seat: Option<String>,
    pub description: Option<String>,
}

impl EventView {
    pub fn new(details: &EventDetails) -> Self {
        let nonempty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let seat: Vec<String> = [
            ("Section", &details.section),
            ("Row", &details.row),
            ("Seat", &details.seat),
        ]
        .into_iter()
        .filter_map(|(label, value)| nonempty(value).map(|v| format!("{label} {v}")))
        .collect();
        Self {
            venue: nonempty(&details.venue),
            city: nonempty(&details.city),
            when: details.starts_at.map(|at| {
                (
                    when(at),
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                )
            }),
            seat: (!seat.is_empty()).then(|| seat.join(" · ")),
            description: nonempty(&details.description),
        }
    }

    /// `Venue, City` (either alone, or nothing).
    pub fn place(&self) -> Option<String> {
        match (&self.venue, &self.city) {
            (Some(venue), Some(city)) => Some(format!("{venue}, {city}")),
            (Some(one), None) | (None, Some(one)) => Some(one.clone()),
            (None, None) => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.venue.is_none()
            && self.city.is_none()
            && self.when.is_none()
            && self.seat.is_none()
            && self.description.is_none()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn events_read_as_one_line_each() {
        let details = EventDetails {
            venue: Some("Hall".into()),
            city: Some(" ".into()),
            starts_at: "2030-05-03T20:00:00Z".parse().ok(),
            section: Some("A".into()),
            seat: Some("12".into()),
            ..EventDetails::default()
        };
        let view = EventView::new(&details);
        assert_eq!(view.place().as_deref(), Some("Hall"));
        assert_eq!(view.seat.as_deref(), Some("Section A · Seat 12"));
        assert_eq!(view.when.unwrap().0, "Fri 3 May 2030, 20:00 UTC");
        assert!(EventView::new(&EventDetails::default()).is_empty());
    }

    #[test]
    fn prices_have_two_decimals_and_clocks_pad_seconds() {
        assert_eq!(money(19.9), "$19.90");
        assert_eq!(money(1000000.0), "$1000000.00");
        assert_eq!(clock(845), "14:05");
        assert_eq!(clock(-3), "0:00");
    }
}
