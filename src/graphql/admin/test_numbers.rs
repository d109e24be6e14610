//! Test numbers.

use async_graphql::{Context, ID, InputObject, Object};

use super::types::TestNumber;
use super::{answer, connection, secret};
use crate::admin::test_numbers;
use crate::graphql::types::parse_id;

/// A number that verifies without a call, with the caller ID that verifies it.
#[derive(InputObject)]
pub struct TestNumberInput {
    pub phone_number: String,
    pub caller_id: String,
    #[graphql(default)]
    pub label: String,
}

#[derive(Default)]
pub struct TestNumbersQuery;

#[Object]
impl TestNumbersQuery {
    async fn test_numbers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TestNumber>> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let rows = answer(test_numbers::list(&mut conn, principal.tenant.id).await)?;
        Ok(rows.iter().map(TestNumber::from).collect())
    }
}

#[derive(Default)]
pub struct TestNumbersMutation;

#[Object]
impl TestNumbersMutation {
    async fn add_test_number(
        &self,
        ctx: &Context<'_>,
        input: TestNumberInput,
    ) -> async_graphql::Result<TestNumber> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let row = answer(
            test_numbers::add(
                &mut conn,
                principal.tenant.id,
                &input.phone_number,
                &input.caller_id,
                &input.label,
            )
            .await,
        )?;
        Ok(TestNumber::from(&row))
    }

    async fn remove_test_number(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<TestNumber> {
        let principal = secret(ctx).await?;
        let id = parse_id(&id, "id")?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let row = answer(test_numbers::remove(&mut conn, principal.tenant.id, id).await)?;
        Ok(TestNumber::from(&row))
    }
}
