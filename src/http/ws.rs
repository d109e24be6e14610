//! `GET /graphql/ws`: GraphQL subscriptions over WebSocket, with the graphql-transport-ws
//! protocol and the legacy graphql-ws (subscriptions-transport-ws) one. The API key comes in
//! `connection_init` (`{"Authorization": "Bearer pk_…"}`); the connection is closed when it does
//! not initialise in time, stays without subscriptions too long, or does not read its messages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::Data;
use async_graphql::http::{
    ALL_WEBSOCKET_PROTOCOLS, WebSocket as GraphQLSocket, WebSocketProtocols, WsMessage,
};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt, future};
use serde_json::Value;
use tokio::time::{Instant, MissedTickBehavior, interval, timeout};

use crate::app::AppState;
use crate::auth;
use crate::config::WsLimits;
use crate::error::AppError;
use crate::graphql::context::{RequestAuth, SubscriptionSlots};
use crate::verification::ClientInfo;

/// Largest message a client may send.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Close codes of the graphql-transport-ws protocol.
const CLOSE_FORBIDDEN: u16 = 4403;
const CLOSE_INIT_TIMEOUT: u16 = 4408;
const CLOSE_NORMAL: u16 = 1000;
/// The server is shutting down; clients reconnect (to another instance).
const CLOSE_GOING_AWAY: u16 = 1001;

/// The first protocol of the client's list that we speak.
fn negotiate(headers: &HeaderMap) -> Option<WebSocketProtocols> {
    headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())?
        .split(',')
        .find_map(|name| name.trim().parse().ok())
}

/// Upgrades to a subscription connection.
pub async fn graphql_ws(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = negotiate(&headers) else {
        return (
            StatusCode::BAD_REQUEST,
            "ask for the graphql-transport-ws (or graphql-ws) subprotocol",
        )
            .into_response();
    };
    let forwarded_for = headers
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok());
    let client = ClientInfo {
        ip: Some(
            super::client_ip::client_ip(peer.ip(), forwarded_for, &state.config.trusted_proxies)
                .to_string(),
        ),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(256).collect()),
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        // Small buffers keep an idle subscription cheap; messages here are tiny.
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| serve(socket, protocol, state, client))
}

/// The key from a `connection_init` payload: `Authorization` (any case) or `apiKey`.
fn presented_key(payload: &Value) -> Option<&str> {
    payload.as_object()?.iter().find_map(|(name, value)| {
        let name = name.to_ascii_lowercase();
        (name == "authorization" || name == "apikey")
            .then(|| value.as_str())
            .flatten()
    })
}

async fn serve(
    socket: WebSocket,
    protocol: WebSocketProtocols,
    state: AppState,
    client: ClientInfo,
) {
    let limits = state.config.ws;
    let slots = SubscriptionSlots::new(limits.max_subscriptions);
    let initialised = Arc::new(AtomicBool::new(false));
    let (mut sink, stream) = socket.split();
    let input = stream
        .take_while(|message| future::ready(message.is_ok()))
        .filter_map(|message| {
            future::ready(match message {
                Ok(Message::Text(text)) => Some(text.as_bytes().to_vec()),
                Ok(Message::Binary(bytes)) => Some(bytes.to_vec()),
                _ => None,
            })
        });
    let on_init = {
        let (state, slots, initialised) = (state.clone(), slots.clone(), initialised.clone());
        move |payload: Value| async move {
            let principal = match presented_key(&payload) {
                Some(key) => {
                    let key = RequestAuth::bearer_value(key);
                    let mut conn = state.db.system().await.map_err(init_error)?;
                    auth::authenticate(&mut conn, &key)
                        .await
                        .map_err(init_error)?
                }
                None => return Err(init_error(AppError::Unauthenticated)),
            };
            let mut data = Data::default();
            data.insert(RequestAuth::authenticated(principal));
            data.insert(client);
            data.insert(slots);
            initialised.store(true, Ordering::Release);
            Ok(data)
        }
    };
    let mut messages = GraphQLSocket::new(state.schema.clone(), input, protocol)
        .on_connection_init(on_init)
        .boxed();
    let opened = Instant::now();
    let mut idle_since = Instant::now();
    let mut last_ping = Instant::now();
    let mut ticker = interval(tick_period(&limits));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut going_away = state.going_away.clone();
    loop {
        if *going_away.borrow_and_update() {
            close(&mut sink, CLOSE_GOING_AWAY, "server shutting down", &limits).await;
            return;
        }
        tokio::select! {
            changed = going_away.changed() => {
                // A dropped sender means the server is gone too.
                if changed.is_err() {
                    close(&mut sink, CLOSE_GOING_AWAY, "server shutting down", &limits).await;
                    return;
                }
            }
            outgoing = messages.next() => match outgoing {
                Some(WsMessage::Text(text)) => {
                    if !send(&mut sink, Message::Text(text.into()), &limits).await {
                        return;
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    // async-graphql closes refused inits with 1002; the protocol says 4403.
                    let code = if initialised.load(Ordering::Acquire) { code } else { CLOSE_FORBIDDEN };
                    close(&mut sink, code, &reason, &limits).await;
                    return;
                }
                None => return,
            },
            _ = ticker.tick() => {
                let now = Instant::now();
                if !initialised.load(Ordering::Acquire) {
                    if now.duration_since(opened) >= limits.init_timeout {
                        close(&mut sink, CLOSE_INIT_TIMEOUT, "Connection initialisation timeout", &limits).await;
                        return;
                    }
                    continue;
                }
                if slots.active() > 0 {
                    idle_since = now;
                } else if now.duration_since(idle_since) >= limits.idle_timeout {
                    close(&mut sink, CLOSE_NORMAL, "idle", &limits).await;
                    return;
                }
                if now.duration_since(last_ping) >= limits.keepalive {
                    last_ping = now;
                    let ping = match protocol {
                        WebSocketProtocols::GraphQLWS => r#"{"type":"ping"}"#,
                        WebSocketProtocols::SubscriptionsTransportWS => r#"{"type":"ka"}"#,
                    };
                    if !send(&mut sink, Message::Text(ping.into()), &limits).await {
                        return;
                    }
                }
            }
        }
    }
}

fn tick_period(limits: &WsLimits) -> std::time::Duration {
    limits
        .init_timeout
        .min(limits.keepalive)
        .min(limits.idle_timeout)
        .min(std::time::Duration::from_secs(1))
}

fn init_error(err: AppError) -> async_graphql::Error {
    async_graphql::Error::new(format!("{}: {}", err.code(), err.client_message()))
}

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// Sends one message; false when the client is gone or does not read in time.
async fn send(sink: &mut Sink, message: Message, limits: &WsLimits) -> bool {
    matches!(
        timeout(limits.send_timeout, sink.send(message)).await,
        Ok(Ok(()))
    )
}

async fn close(sink: &mut Sink, code: u16, reason: &str, limits: &WsLimits) {
    let frame = CloseFrame {
        code,
        reason: reason.chars().take(120).collect::<String>().into(),
    };
    let _ = send(sink, Message::Close(Some(frame)), limits).await;
}
