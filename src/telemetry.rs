//! Structured logging with `tracing`: text for people, JSON for log pipelines; with the `sentry`
//! feature and `SENTRY_DSN` set, errors and panics are also reported to Sentry.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogFormat;

/// Keeps error reporting alive; dropping it flushes what is queued.
#[must_use = "error reports stop when this is dropped"]
pub struct Telemetry {
    #[cfg(feature = "sentry")]
    _sentry: Option<sentry::ClientInitGuard>,
}

/// Installs the global subscriber; `RUST_LOG` overrides the default `info` level.
pub fn init(format: LogFormat) -> Telemetry {
    init_with(format, std::env::var("SENTRY_DSN").ok())
}

/// [`init`] with the Sentry DSN given rather than read from the environment.
pub fn init_with(format: LogFormat, sentry_dsn: Option<String>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(std::io::stderr);
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    let registry = tracing_subscriber::registry().with(fmt).with(filter);
    #[cfg(feature = "sentry")]
    {
        let (layer, guard) = sentry_reporting(sentry_dsn);
        // A second init (tests, embedded use) keeps the first subscriber.
        let _ = registry.with(layer).try_init();
        Telemetry { _sentry: guard }
    }
    #[cfg(not(feature = "sentry"))]
    {
        let _ = (registry.try_init(), sentry_dsn);
        Telemetry {}
    }
}

/// The Sentry client from `SENTRY_DSN` (and `SENTRY_ENVIRONMENT`), and the layer that turns
/// `error!` events into reports and other events into breadcrumbs.
#[cfg(feature = "sentry")]
fn sentry_reporting<S>(
    dsn: Option<String>,
) -> (
    Option<sentry::integrations::tracing::SentryLayer<S>>,
    Option<sentry::ClientInitGuard>,
)
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let Some(dsn) = dsn.filter(|d| !d.is_empty()) else {
        return (None, None);
    };
    let guard = sentry::init((
        dsn,
        sentry::ClientOptions {
            release: sentry::release_name!(),
            environment: std::env::var("SENTRY_ENVIRONMENT").ok().map(Into::into),
            // Logs are already masked; request bodies and addresses are never attached.
            send_default_pii: false,
            ..Default::default()
        },
    ));
    (Some(sentry::integrations::tracing::layer()), Some(guard))
}
