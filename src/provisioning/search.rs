//! Searching across resource types (`POST /.search` at the root, RFC 7644 §3.4.3): users, then
//! groups, as one paged list. A filter that names an attribute one type does not have matches
//! nothing of that type; one that fits neither type is refused as for a single type.

use serde_json::Value;

use super::{Context, Error, Provisioner, Result};
use crate::scim::error::ScimError;
use crate::scim::list::ListQuery;
use crate::scim::projection::Projection;

impl Provisioner {
    pub async fn search_all(
        &self,
        ctx: &Context,
        query: &ListQuery,
        user_projection: &Projection,
        group_projection: &Projection,
    ) -> Result<(i64, Vec<Value>)> {
        let users = self.list_users(ctx, query, None, user_projection).await;
        let (user_total, mut resources) = match users {
            Ok(found) => found,
            Err(Error::Scim(e)) if e.status == 400 => {
                // Not a filter users can satisfy; it may still fit groups.
                let groups = self.list_groups(ctx, query, None, group_projection).await;
                return match groups {
                    Ok(found) => Ok(found),
                    Err(Error::Scim(_)) => Err(Error::Scim(e)),
                    Err(other) => Err(other),
                };
            }
            Err(other) => return Err(other),
        };
        let taken = resources.len() as u64;
        let before_groups = user_total.max(0) as u64;
        // Where the page continues into the groups, and how much room is left on it.
        let group_start = (query.start_index + taken)
            .saturating_sub(before_groups)
            .max(1);
        let room = u64::from(query.count).saturating_sub(taken) as u32;
        let group_query = ListQuery {
            filter: query.filter.clone(),
            start_index: group_start,
            count: room,
        };
        let group_total = match self
            .list_groups(ctx, &group_query, None, group_projection)
            .await
        {
            Ok((total, mut page)) => {
                resources.append(&mut page);
                total
            }
            Err(Error::Scim(ScimError { status: 400, .. })) => 0,
            Err(other) => return Err(other),
        };
        Ok((user_total + group_total, resources))
    }
}
