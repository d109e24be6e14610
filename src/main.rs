#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use missedcall::cli::{self, Cli};
use missedcall::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = missedcall::telemetry::init(config.log_format);
    match cli::run(cli, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
