//! One HTTP exchange of the stand-in (request in, response out) and how a fault alters what is
//! served: shared by the list/get handlers (serve.rs) and the watch handler (watch.rs).

use std::time::SystemTime;

use serde_json::Value;

use super::http::{self, Conn, Request};
use super::status;
use super::store::rfc3339;
use super::{RequestRecord, Shared};

/// What happens to the connection after an exchange.
pub(crate) enum Flow {
    KeepAlive,
    /// Dropped without close_notify (a cut, a failed write).
    Abort,
}

/// One request being answered.
pub(crate) struct Exchange<'a> {
    pub shared: &'a Shared,
    pub conn: &'a mut Conn,
    pub req: &'a Request,
    pub audit: String,
}

impl Exchange<'_> {
    /// Records the request with the status it gets.
    pub fn log(&self, code: u16) {
        self.shared.record(RequestRecord {
            time: rfc3339(SystemTime::now()),
            peer: self.conn.peer,
            user: self.conn.identity.user.clone(),
            groups: self.conn.identity.groups.clone(),
            line: self.req.line.clone(),
            method: self.req.method.clone(),
            target: self.req.target.clone(),
            headers: self.req.headers.clone(),
            status: code,
        });
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Flow {
        match self.conn.write(bytes).await {
            Ok(()) => Flow::KeepAlive,
            Err(_) => Flow::Abort,
        }
    }

    /// A complete response; with `cut`, half the body and then the connection is dropped.
    pub async fn body(
        &mut self,
        code: u16,
        content_type: &str,
        body: &[u8],
        extra: &[(&str, String)],
        cut: bool,
    ) -> Flow {
        self.log(code);
        let head = http::head(code, content_type, Some(body.len()), &self.audit, extra);
        let mut bytes = head.into_bytes();
        let shown = if cut { body.len() / 2 } else { body.len() };
        bytes.extend_from_slice(&body[..shown]);
        match (self.write(&bytes).await, cut) {
            (Flow::KeepAlive, true) => Flow::Abort,
            (flow, _) => flow,
        }
    }

    pub async fn json(&mut self, code: u16, value: &Value, cut: bool) -> Flow {
        let mut body = value.to_string().into_bytes();
        body.push(b'\n');
        self.body(code, "application/json", &body, &[], cut).await
    }

    pub async fn status(&mut self, status: Value) -> Flow {
        let extra: Vec<(&str, String)> = match status::code_of(&status) {
            429 | 504 => vec![("Retry-After", "1".into())],
            _ => vec![],
        };
        let mut body = status.to_string().into_bytes();
        body.push(b'\n');
        self.body(
            status::code_of(&status),
            "application/json",
            &body,
            &extra,
            false,
        )
        .await
    }
}

/// How a served response is altered by a fault.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mode {
    pub strip_addresses: bool,
    pub cut: bool,
}

/// Removes `status.addresses` (the [`Fault::NoAddresses`] fault).
pub(crate) fn strip_addresses(object: &mut Value) {
    if let Some(status) = object.get_mut("status").and_then(Value::as_object_mut) {
        status.remove("addresses");
    }
}
