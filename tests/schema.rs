//! `schema.graphql` must be the SDL the code exports. Regenerate with
//! `UPDATE_SCHEMA=1 cargo test --test schema`.

#[test]
fn schema_graphql_matches_the_code() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let exported = missedcall::graphql::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &exported)?;
    }
    let committed = std::fs::read_to_string(&path)?;
    assert!(
        committed == exported,
        "schema.graphql is out of date; run `UPDATE_SCHEMA=1 cargo test --test schema`"
    );
    Ok(())
}
