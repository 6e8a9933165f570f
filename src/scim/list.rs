//! List queries and responses (RFC 7644 §3.4.2; cursor paging, RFC 9865): the parameters a
//! client sends, validated, and the ListResponse envelope.

use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::filter::{self, Filter};

pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// `filter.maxResults` of ServiceProviderConfig: the largest page the server returns.
pub const MAX_RESULTS: u32 = 200;

/// How a list is paged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    /// `startIndex` (1-based), RFC 7644 §3.4.2.4: the default.
    Index { start_index: u64 },
    /// `cursor`, RFC 9865: `None` asks for the first page (`cursor=` empty), `Some` continues
    /// from a previous page's `nextCursor`.
    Cursor(Option<String>),
}

/// Validated list parameters (RFC 7644 §3.4.2.2 – §3.4.2.4, RFC 9865 §2).
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    pub paging: Paging,
    /// Page size, already capped to [`MAX_RESULTS`].
    pub count: u32,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filter: None,
            paging: Paging::Index { start_index: 1 },
            count: MAX_RESULTS,
        }
    }
}

impl ListQuery {
    /// Builds a query from the raw parameters. Per RFC 7644 §3.4.2.4 a `startIndex` below 1 is
    /// read as 1, a negative `count` as 0, and a `count` above the maximum is capped. A `cursor`
    /// parameter, even empty, selects cursor paging.
    pub fn parse(
        filter: Option<&str>,
        start_index: Option<&str>,
        count: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Self, ScimError> {
        let filter = match filter.map(str::trim) {
            Some(f) if !f.is_empty() => Some(filter::parse(f)?),
            _ => None,
        };
        let count = match count {
            Some(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| {
                    ScimError::invalid_value(format!("count must be an integer, got '{s}'"))
                })?
                .clamp(0, i64::from(MAX_RESULTS)) as u32,
            None => MAX_RESULTS,
        };
        let paging = match (cursor, start_index) {
            (Some(_), Some(_)) => {
                return Err(ScimError::invalid_value(
                    "use either startIndex (index paging) or cursor (cursor paging), not both",
                ));
            }
            (Some(c), None) => {
                Paging::Cursor(Some(c.trim()).filter(|c| !c.is_empty()).map(str::to_string))
            }
            (None, Some(s)) => Paging::Index {
                start_index: s
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| {
                        ScimError::invalid_value(format!(
                            "startIndex must be an integer, got '{s}'"
                        ))
                    })?
                    .max(1) as u64,
            },
            (None, None) => Paging::Index { start_index: 1 },
        };
        Ok(ListQuery {
            filter,
            paging,
            count,
        })
    }

    /// The 1-based index of the first result in index paging.
    pub fn start_index(&self) -> Option<u64> {
        match self.paging {
            Paging::Index { start_index } => Some(start_index),
            Paging::Cursor(_) => None,
        }
    }
}

/// One page of results, ready to render.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub total_results: u64,
    pub resources: Vec<Value>,
    /// Index paging: the page's 1-based start.
    pub start_index: Option<u64>,
    /// Cursor paging: the cursor of the next page; absent on the last page (RFC 9865 §2).
    pub next_cursor: Option<String>,
}

/// The ListResponse envelope (RFC 7644 §3.4.2, RFC 9865 §2).
pub fn list_response(page: ListPage) -> Value {
    let mut body = Map::new();
    body.insert("schemas".into(), json!([LIST_RESPONSE_SCHEMA]));
    body.insert("totalResults".into(), json!(page.total_results));
    if let Some(start_index) = page.start_index {
        body.insert("startIndex".into(), json!(start_index));
    }
    body.insert("itemsPerPage".into(), json!(page.resources.len()));
    if let Some(next) = page.next_cursor {
        body.insert("nextCursor".into(), Value::String(next));
    }
    body.insert("Resources".into(), Value::Array(page.resources));
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_parameters_are_clamped_as_the_rfc_says() {
        let q = ListQuery::parse(None, Some("0"), Some("-5"), None).unwrap();
        assert_eq!((q.start_index(), q.count), (Some(1), 0));
        let q = ListQuery::parse(None, None, Some("100000"), None).unwrap();
        assert_eq!(q.count, MAX_RESULTS);
        assert!(ListQuery::parse(None, Some("x"), None, None).is_err());
        assert!(ListQuery::parse(Some("userName eq"), None, None, None).is_err());
    }

    #[test]
    fn an_empty_cursor_asks_for_the_first_page() {
        assert_eq!(
            ListQuery::parse(None, None, None, Some("")).unwrap().paging,
            Paging::Cursor(None)
        );
        assert_eq!(
            ListQuery::parse(None, None, None, Some("abc"))
                .unwrap()
                .paging,
            Paging::Cursor(Some("abc".into()))
        );
        assert!(ListQuery::parse(None, Some("1"), None, Some("")).is_err());
    }
}
