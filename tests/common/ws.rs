//! A small graphql-transport-ws (and legacy graphql-ws) client for subscription tests.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestResult;

pub const SESSION_STATUS: &str = "subscription($id: ID!, $token: String!) { \
    sessionStatus(sessionId: $id, sessionToken: $token) { sessionId status at reason } }";

/// How long a test waits for any one message before failing.
const WAIT: Duration = Duration::from_secs(15);

/// What the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Json(Value),
    Closed(Option<u16>, String),
}

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    legacy: bool,
}

impl WsClient {
    /// Opens `/graphql/ws` on `base` (http://host:port) with the given subprotocol.
    pub async fn connect_with(base: &str, protocol: &str) -> TestResult<Self> {
        let url = format!("{}/graphql/ws", base.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse()?);
        let (stream, response) =
            tokio_tungstenite::connect_async_with_config(request, None, true).await?;
        let chosen = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok());
        assert_eq!(chosen, Some(protocol));
        Ok(Self {
            stream,
            legacy: protocol == "graphql-ws",
        })
    }

    pub async fn connect(base: &str) -> TestResult<Self> {
        Self::connect_with(base, "graphql-transport-ws").await
    }

    /// Connects and completes `connection_init` with the key; fails unless acknowledged.
    pub async fn ready(base: &str, key: &str) -> TestResult<Self> {
        let mut client = Self::connect(base).await?;
        let ack = client.init(Some(key)).await?;
        assert_eq!(ack, Incoming::Json(json!({"type": "connection_ack"})));
        Ok(client)
    }

    pub async fn send(&mut self, value: Value) -> TestResult {
        self.stream
            .send(Message::Text(value.to_string().into()))
            .await?;
        Ok(())
    }

    pub async fn init(&mut self, key: Option<&str>) -> TestResult<Incoming> {
        let payload = match key {
            Some(key) => json!({"Authorization": format!("Bearer {key}")}),
            None => json!({}),
        };
        self.send(json!({"type": "connection_init", "payload": payload}))
            .await?;
        self.next().await
    }

    pub async fn subscribe(&mut self, id: &str, session_id: &str, token: &str) -> TestResult {
        let kind = if self.legacy { "start" } else { "subscribe" };
        self.send(json!({
            "id": id,
            "type": kind,
            "payload": {"query": SESSION_STATUS, "variables": {"id": session_id, "token": token}},
        }))
        .await
    }

    /// The next message that is not a keep-alive; pings are answered.
    pub async fn next(&mut self) -> TestResult<Incoming> {
        loop {
            let message = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .map_err(|_| "no message from the server in time")?;
            match message {
                None => return Ok(Incoming::Closed(None, String::new())),
                Some(Err(_)) => return Ok(Incoming::Closed(None, "error".into())),
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text)?;
                    match value["type"].as_str() {
                        Some("ping") => self.send(json!({"type": "pong"})).await?,
                        Some("ka") => {}
                        _ => return Ok(Incoming::Json(value)),
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return Ok(match frame {
                        Some(frame) => {
                            Incoming::Closed(Some(frame.code.into()), frame.reason.to_string())
                        }
                        None => Incoming::Closed(None, String::new()),
                    });
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// Collects the statuses of subscription `id` until it completes or errors; the error's
    /// code, if any, is the second value.
    pub async fn statuses(&mut self, id: &str) -> TestResult<(Vec<String>, Option<String>)> {
        let mut statuses = Vec::new();
        let mut code = None;
        loop {
            match self.next().await? {
                Incoming::Json(value) if value["id"] == id => match value["type"].as_str() {
                    Some("next") | Some("data") => {
                        if let Some(errors) = value["payload"]["errors"].as_array()
                            && let Some(first) = errors.first()
                        {
                            // A resolver error arrives as a result with errors, then `complete`.
                            code = first["extensions"]["code"].as_str().map(str::to_owned);
                            continue;
                        }
                        let event = &value["payload"]["data"]["sessionStatus"];
                        statuses.push(event["status"].as_str().unwrap_or("?").to_owned());
                    }
                    Some("complete") => return Ok((statuses, code)),
                    Some("error") => {
                        let code = value["payload"][0]["extensions"]["code"]
                            .as_str()
                            .map(str::to_owned);
                        return Ok((statuses, code));
                    }
                    other => return Err(format!("unexpected message {other:?}: {value}").into()),
                },
                Incoming::Json(other) => {
                    return Err(format!("message for another id: {other}").into());
                }
                Incoming::Closed(code, reason) => {
                    return Err(format!("closed ({code:?} {reason}) after {statuses:?}").into());
                }
            }
        }
    }

    /// The next status of subscription `id`.
    pub async fn next_status(&mut self, id: &str) -> TestResult<Value> {
        match self.next().await? {
            Incoming::Json(value)
                if value["id"] == id && (value["type"] == "next" || value["type"] == "data") =>
            {
                Ok(value["payload"]["data"]["sessionStatus"].clone())
            }
            other => Err(format!("expected an event, got {other:?}").into()),
        }
    }
}
