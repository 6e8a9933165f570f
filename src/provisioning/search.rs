//! Searching across resource types (`POST /.search` at the root, RFC 7644 §3.4.3): users, then
//! groups, as one index-paged list. A filter that names an attribute one type does not have
//! matches nothing of that type; one that fits neither type is refused as for a single type.

use super::{Context, Error, Provisioner, Result};
use crate::scim::error::ScimError;
use crate::scim::list::{ListPage, ListQuery, Paging};
use crate::scim::projection::Projection;

impl Provisioner {
    pub async fn search_all(
        &self,
        ctx: &Context,
        query: &ListQuery,
        user_projection: &Projection,
        group_projection: &Projection,
    ) -> Result<ListPage> {
        let Paging::Index { start_index } = query.paging else {
            return Err(ScimError::invalid_value(
                "cursor paging is per resource type: search /Users/.search or /Groups/.search with a cursor",
            )
            .into());
        };
        let users = match self.list_users(ctx, query, None, user_projection).await {
            Ok(page) => page,
            Err(Error::Scim(e)) if e.status == 400 => {
                // Not a filter users can satisfy; it may still fit groups.
                return match self.list_groups(ctx, query, None, group_projection).await {
                    Ok(page) => Ok(page),
                    Err(Error::Scim(_)) => Err(Error::Scim(e)),
                    Err(other) => Err(other),
                };
            }
            Err(other) => return Err(other),
        };
        let taken = users.resources.len() as u64;
        // Where the page continues into the groups, and how much room is left on it.
        let group_start = (start_index + taken)
            .saturating_sub(users.total_results)
            .max(1);
        let room = u64::from(query.count).saturating_sub(taken) as u32;
        let group_query = ListQuery {
            filter: query.filter.clone(),
            paging: Paging::Index {
                start_index: group_start,
            },
            count: room,
        };
        let mut page = users;
        match self
            .list_groups(ctx, &group_query, None, group_projection)
            .await
        {
            Ok(groups) => {
                page.total_results += groups.total_results;
                page.resources.extend(groups.resources);
            }
            Err(Error::Scim(ScimError { status: 400, .. })) => {}
            Err(other) => return Err(other),
        }
        Ok(page)
    }
}
