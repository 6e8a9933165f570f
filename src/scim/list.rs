//! List queries and responses (RFC 7644 §3.4.2): the parameters a client sends, validated, and
//! the ListResponse envelope.

use serde_json::{Value, json};

use super::error::ScimError;
use super::filter::{self, Filter};

pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// `filter.maxResults` of ServiceProviderConfig: the largest page the server returns.
pub const MAX_RESULTS: u32 = 200;

/// Validated list parameters (RFC 7644 §3.4.2.2 – §3.4.2.4).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    /// 1-based index of the first result.
    pub start_index: u64,
    /// Page size, already capped to [`MAX_RESULTS`].
    pub count: u32,
}

impl ListQuery {
    /// Builds a query from the raw parameters. Per RFC 7644 §3.4.2.4 a `startIndex` below 1 is
    /// read as 1, a negative `count` as 0, and a `count` above the maximum is capped.
    pub fn parse(
        filter: Option<&str>,
        start_index: Option<&str>,
        count: Option<&str>,
    ) -> Result<Self, ScimError> {
        let filter = match filter.map(str::trim) {
            Some(f) if !f.is_empty() => Some(filter::parse(f)?),
            _ => None,
        };
        let start_index = match start_index {
            Some(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| {
                    ScimError::invalid_value(format!("startIndex must be an integer, got '{s}'"))
                })?
                .max(1) as u64,
            None => 1,
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
        Ok(ListQuery {
            filter,
            start_index,
            count,
        })
    }
}

/// The ListResponse envelope (RFC 7644 §3.4.2).
pub fn list_response(total_results: u64, start_index: u64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total_results,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_parameters_are_clamped_as_the_rfc_says() {
        let q = ListQuery::parse(None, Some("0"), Some("-5")).unwrap();
        assert_eq!((q.start_index, q.count), (1, 0));
        let q = ListQuery::parse(None, None, Some("100000")).unwrap();
        assert_eq!(q.count, MAX_RESULTS);
        assert!(ListQuery::parse(None, Some("x"), None).is_err());
        assert!(ListQuery::parse(Some("userName eq"), None, None).is_err());
    }
}
