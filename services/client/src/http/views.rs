//! What every page template shares, and the small formatting rules of the pages.

use crate::backend::User;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_have_two_decimals_and_clocks_pad_seconds() {
        assert_eq!(money(19.9), "$19.90");
        assert_eq!(money(1000000.0), "$1000000.00");
        assert_eq!(clock(845), "14:05");
        assert_eq!(clock(-3), "0:00");
    }
}
