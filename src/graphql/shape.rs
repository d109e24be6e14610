//! Limits on the shape of a request, checked right after parsing: at most one `verify` field
//! (aliases would otherwise buy several guesses per request) and a bounded number of aliases.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensions, Pos, ServerResult, Variables};

use crate::error::AppError;

/// Most aliases one request may use.
pub const MAX_ALIASES: usize = 30;

/// The extension that enforces the limits; in production it also refuses introspection.
pub struct RequestShape {
    pub production: bool,
}

impl ExtensionFactory for RequestShape {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestShapeCheck {
            production: self.production,
        })
    }
}

struct RequestShapeCheck {
    production: bool,
}

#[async_trait::async_trait]
impl Extension for RequestShapeCheck {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        check(&document).map_err(|(err, pos)| err.extend().into_server_error(pos))?;
        if self.production
            && let Some(pos) = introspection(&document)
        {
            return Err(AppError::Forbidden("introspection is off in production")
                .extend()
                .into_server_error(pos));
        }
        Ok(document)
    }
}

/// Checks a parsed document.
pub fn check(document: &ExecutableDocument) -> Result<(), (AppError, Pos)> {
    let mut aliases = 0usize;
    let mut first_alias = Pos::default();
    for fragment in document.fragments.values() {
        count_aliases(
            &fragment.node.selection_set.node,
            &mut aliases,
            &mut first_alias,
        );
    }
    for (_, operation) in document.operations.iter() {
        let set = &operation.node.selection_set.node;
        count_aliases(set, &mut aliases, &mut first_alias);
        let mut keys = HashSet::new();
        let mut visited = HashSet::new();
        if let Some(pos) = verify_keys(document, set, &mut keys, &mut visited) {
            return Err((AppError::MultipleVerifyNotAllowed, pos));
        }
    }
    if aliases > MAX_ALIASES {
        return Err((AppError::TooManyAliases(MAX_ALIASES), first_alias));
    }
    Ok(())
}

/// Where the document asks for `__schema` or `__type`, if it does.
fn introspection(document: &ExecutableDocument) -> Option<Pos> {
    fn find(set: &SelectionSet) -> Option<Pos> {
        set.items.iter().find_map(|item| match &item.node {
            Selection::Field(field) => {
                let name = field.node.name.node.as_str();
                if name == "__schema" || name == "__type" {
                    Some(item.pos)
                } else {
                    find(&field.node.selection_set.node)
                }
            }
            Selection::InlineFragment(fragment) => find(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => None,
        })
    }
    document
        .operations
        .iter()
        .find_map(|(_, op)| find(&op.node.selection_set.node))
        .or_else(|| {
            document
                .fragments
                .values()
                .find_map(|fragment| find(&fragment.node.selection_set.node))
        })
}

fn count_aliases(set: &SelectionSet, count: &mut usize, first: &mut Pos) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                if let Some(alias) = &field.node.alias {
                    if *count == 0 {
                        *first = alias.pos;
                    }
                    *count += 1;
                }
                count_aliases(&field.node.selection_set.node, count, first);
            }
            Selection::InlineFragment(fragment) => {
                count_aliases(&fragment.node.selection_set.node, count, first);
            }
            Selection::FragmentSpread(_) => {}
        }
    }
}

/// Collects the response keys of root `verify` fields, through fragments; the position of the
/// second distinct one, if any.
fn verify_keys<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    keys: &mut HashSet<&'a str>,
    visited: &mut HashSet<&'a str>,
) -> Option<Pos> {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) if field.node.name.node.as_str() == "verify" => {
                let key = field
                    .node
                    .alias
                    .as_ref()
                    .map_or(field.node.name.node.as_str(), |alias| alias.node.as_str());
                keys.insert(key);
                if keys.len() > 1 {
                    return Some(item.pos);
                }
            }
            Selection::Field(_) => {}
            Selection::InlineFragment(fragment) => {
                if let Some(pos) =
                    verify_keys(document, &fragment.node.selection_set.node, keys, visited)
                {
                    return Some(pos);
                }
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if !visited.insert(name) {
                    continue;
                }
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    && let Some(pos) =
                        verify_keys(document, &fragment.node.selection_set.node, keys, visited)
                {
                    return Some(pos);
                }
            }
        }
    }
    None
}
