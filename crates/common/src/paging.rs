//! Keyset paging for list endpoints: `?limit=&cursor=`, newest first, with a
//! `Link: <…>; rel="next"` header when there is more.
//!
//! The cursor is the last id of the previous page ([`Page::fetch`] reads a page,
//! [`Page::finish`] gives its `Link`); the next page is `_id < cursor` on an
//! index ending in `_id`, so a page costs the same however deep it is.

use axum::http::{HeaderMap, HeaderValue, header};
use bson::oid::ObjectId;
use bson::{Document, doc};
use futures::TryStreamExt;
use mongodb::Collection;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorItem};
use crate::store::StoreResult;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// The raw query; strings so that bad values get our error shape (documented as what
/// they must be).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many per page, 1 to 100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// Where the page starts: the `cursor` of the previous page's `Link: <…>; rel="next"`
    /// (an id, 24 hex digits).
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub cursor: Option<ObjectId>,
}

impl PageQuery {
    pub fn parse(&self) -> Result<Page, ApiError> {
        let mut errors = Vec::new();
        let limit = match self.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    errors.push(ErrorItem::field(
                        "limit",
                        format!("Limit must be a whole number from 1 to {MAX_LIMIT}"),
                    ));
                    DEFAULT_LIMIT
                }
            },
        };
        let cursor = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(raw) => match raw.parse::<ObjectId>() {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.push(ErrorItem::field("cursor", "Cursor is not valid"));
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(Page { limit, cursor })
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

impl Page {
    /// How many to fetch: one more than the page, to know whether there is a next one.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }

    /// One page (plus one) of the documents of `collection` matching `filter`, newest
    /// first (by `_id`), from the cursor on.
    pub async fn fetch<T>(
        &self,
        collection: &Collection<T>,
        mut filter: Document,
    ) -> StoreResult<Vec<T>>
    where
        T: DeserializeOwned + Send + Sync,
    {
        if let Some(cursor) = self.cursor {
            filter.insert("_id", doc! {"$lt": cursor});
        }
        Ok(collection
            .find(filter)
            .sort(doc! {"_id": -1})
            .limit(self.fetch_limit())
            .await?
            .try_collect()
            .await?)
    }

    /// Trims a fetched batch to the page and gives the headers with the `Link` to the
    /// next page, if there is one. `path` may carry a query of its own (filters the next
    /// page keeps).
    pub fn finish<T>(
        &self,
        mut items: Vec<T>,
        path: &str,
        id_of: impl Fn(&T) -> ObjectId,
    ) -> (Vec<T>, HeaderMap) {
        let more = items.len() as i64 > self.limit;
        items.truncate(self.limit as usize);
        let separator = if path.contains('?') { '&' } else { '?' };
        let link = more
            .then(|| items.last().map(&id_of))
            .flatten()
            .and_then(|last| {
                HeaderValue::from_str(&format!(
                    "<{path}{separator}limit={}&cursor={}>; rel=\"next\"",
                    self.limit,
                    last.to_hex()
                ))
                .ok()
            });
        (items, link_header(link))
    }
}

/// The response headers with `Link: <…>; rel="next"` when there is a next page.
pub fn link_header(next: Option<HeaderValue>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(link) = next {
        headers.insert(header::LINK, link);
    }
    headers
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn query(limit: Option<&str>, cursor: Option<&str>) -> PageQuery {
        PageQuery {
            limit: limit.map(str::to_owned),
            cursor: cursor.map(str::to_owned),
        }
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(query(None, None).parse().unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(query(Some("100"), None).parse().unwrap().limit, 100);
        for bad in ["0", "101", "-1", "ten", "1.5"] {
            assert!(query(Some(bad), None).parse().is_err(), "{bad}");
        }
        let err = query(Some("0"), Some("nope")).parse().unwrap_err();
        assert!(matches!(err, ApiError::Validation(items) if items.len() == 2));
    }

    #[test]
    fn a_next_link_only_when_there_is_more() {
        let page = query(Some("2"), None).parse().unwrap();
        let ids: Vec<ObjectId> = (0..3).map(|_| ObjectId::new()).collect();
        let (items, headers) = page.finish(ids.clone(), "/api/tickets", |id| *id);
        assert_eq!(items.len(), 2);
        assert_eq!(
            headers[header::LINK].to_str().unwrap(),
            format!(
                "</api/tickets?limit=2&cursor={}>; rel=\"next\"",
                ids[1].to_hex()
            )
        );
        let (_, headers) = page.finish(ids.clone(), "/api/tickets/mine?status=sold", |id| *id);
        assert_eq!(
            headers[header::LINK].to_str().unwrap(),
            format!(
                "</api/tickets/mine?status=sold&limit=2&cursor={}>; rel=\"next\"",
                ids[1].to_hex()
            )
        );
        let (_, headers) = page.finish(ids[..2].to_vec(), "/api/tickets", |id| *id);
        assert!(headers.get(header::LINK).is_none());
    }
}
