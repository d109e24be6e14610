//! The GraphQL API: schema assembly, request context, and one module per domain.

pub mod admin;
pub mod context;
pub mod shape;
pub mod subscription;
pub mod types;
pub mod verification;
pub mod viewer;

use async_graphql::{MergedObject, MergedSubscription, Schema};

use crate::app::AppState;

/// Query root, merged from the domains.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    verification::VerificationQuery,
    viewer::ViewerQuery,
    admin::tenant::TenantQuery,
    admin::pool::PoolQuery,
    admin::access::AccessQuery,
    admin::keys::KeysQuery,
    admin::sessions::SessionsQuery,
    admin::statistics::StatisticsQuery,
    admin::operator::OperatorQuery,
    admin::test_numbers::TestNumbersQuery,
    admin::webhooks::WebhooksQuery,
);

/// Mutation root, merged from the domains.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    verification::VerificationMutation,
    admin::tenant::TenantMutation,
    admin::pool::PoolMutation,
    admin::access::AccessMutation,
    admin::keys::KeysMutation,
    admin::operator::OperatorMutation,
    admin::test_numbers::TestNumbersMutation,
    admin::webhooks::WebhooksMutation,
);

/// Subscription root, merged from the domains.
#[derive(MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub struct SubscriptionRoot(subscription::VerificationSubscription);

/// The service's schema.
pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Deepest selection accepted; the API's own shapes are at most 4 deep.
const MAX_DEPTH: usize = 12;
/// Largest query complexity accepted (one point a field).
const MAX_COMPLEXITY: usize = 256;

/// Builds the schema with its limits; `state` becomes schema data when given.
pub fn build_schema(state: Option<AppState>) -> AppSchema {
    let builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .limit_recursive_depth(32)
    .extension(shape::RequestShape {
        production: state.as_ref().is_some_and(|s| s.config.production),
    });
    match state {
        Some(state) if state.config.production => {
            builder.disable_introspection().data(state).finish()
        }
        Some(state) => builder.data(state).finish(),
        None => builder.finish(),
    }
}

/// The SDL the code exports, as checked into `schema.graphql`.
pub fn sdl() -> String {
    build_schema(None).sdl()
}
