//! missedcall: multi-tenant phone-number verification by flash call.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod approval;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod error;
pub mod events;
pub mod gateway;
pub mod graphql;
pub mod http;
pub mod i18n;
pub mod limits;
pub mod loadtest;
pub mod maintenance;
pub mod metrics;
pub mod telemetry;
pub mod tenancy;
pub mod tokens;
pub mod verification;
pub mod webhook_signing;
pub mod webhooks;
