//! Instruments for measuring the service: latency summaries, process figures, and the raw SQL
//! of one flow (the database's own limit). Used by the `loadgen` binary and the benches.

pub mod latency;
pub mod process;
pub mod raw_flow;
