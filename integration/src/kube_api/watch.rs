//! WATCH of nodes: a chunked stream of newline-delimited events.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::exchange::{strip_addresses, Exchange, Flow, Mode};
use super::http::{self, Conn};
use super::query::{self, ListQuery};
use super::status;
use super::store::{At, Event, Kind};
use super::{lock, Shared};

/// Where a watch starts.
struct Start {
    position: u64,
    epoch: u64,
    /// Synthetic ADDED objects first (no resourceVersion, "0", or sendInitialEvents=true).
    initial: Vec<Value>,
    /// The `k8s.io/initial-events-end` bookmark after them (sendInitialEvents=true).
    end_marker: bool,
    /// The resourceVersion asked for is compacted: an in-stream 410 and the end.
    too_old: Option<Value>,
}

fn selected(q: &ListQuery, object: &Value) -> bool {
    q.label_selector.matches(object) && q.field_selector.matches(object)
}

async fn start_point(shared: &Shared, q: &ListQuery) -> Result<Start, Value> {
    let rv = q.resource_version.as_str();
    let wanted = if rv.is_empty() || rv == "0" {
        None
    } else {
        Some(query::parse_rv(rv)?)
    };
    if let Some(n) = wanted {
        shared.wait_fresh(n).await?;
    }
    let store = lock(&shared.store);
    let initial_events = q.send_initial_events.unwrap_or(wanted.is_none());
    let mut start = Start {
        position: store.rv,
        epoch: store.epoch,
        initial: Vec::new(),
        end_marker: q.send_initial_events == Some(true),
        too_old: None,
    };
    if initial_events {
        start.initial = store.nodes().filter(|n| selected(q, n)).cloned().collect();
    } else if let Some(n) = wanted {
        start.position = n;
        if let Err(At::TooOld(oldest)) = store.check_at(n) {
            start.too_old = Some(status::expired(&status::too_old_message(n, oldest)));
        }
    }
    Ok(start)
}

/// Counts the watch as open while it lives.
struct OpenWatch<'a>(&'a AtomicUsize);

impl Drop for OpenWatch<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn event(kind: &str, object: Value) -> Value {
    json!({"type": kind, "object": object})
}

fn bookmark(rv: u64, initial_events_end: bool) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event(
        "BOOKMARK",
        json!({"kind": "Node", "apiVersion": "v1", "metadata": metadata}),
    )
}

/// The event a watcher with this query sees for a change, if any: a change into the selection
/// is ADDED, out of it DELETED (as the watch cache filters).
fn translate(q: &ListQuery, e: &Event) -> Option<Value> {
    let was = e.prev.as_ref().is_some_and(|p| selected(q, p));
    let is = e.kind != Kind::Deleted && selected(q, &e.object);
    let kind = match (e.kind, was, is) {
        (Kind::Added, _, true) => "ADDED",
        (Kind::Deleted, true, _) => "DELETED",
        (Kind::Modified, true, true) => "MODIFIED",
        (Kind::Modified, false, true) => "ADDED",
        (Kind::Modified, true, false) => "DELETED",
        _ => return None,
    };
    Some(event(kind, e.object.clone()))
}

/// Serves a watch until its timeout, the client leaving, a compaction past it, or shutdown.
pub(crate) async fn serve(ex: &mut Exchange<'_>, q: ListQuery, mode: Mode) -> Flow {
    let start = match start_point(ex.shared, &q).await {
        Ok(s) => s,
        Err(s) => return ex.status(s).await,
    };
    ex.shared.open_watches.fetch_add(1, Ordering::SeqCst);
    let _open = OpenWatch(&ex.shared.open_watches);
    ex.log(200);
    let head = http::head(200, "application/json", None, &ex.audit, &[]);
    if let Flow::Abort = ex.write(head.as_bytes()).await {
        return Flow::Abort;
    }
    let timeout = match q.timeout_seconds {
        Some(s) if s > 0 => Duration::from_secs(s as u64),
        _ => ex.shared.opts.default_watch_timeout,
    };
    let mut w = Watch {
        shared: ex.shared,
        q,
        mode,
        position: start.position,
        epoch: start.epoch,
    };
    w.run(ex.conn, start, Instant::now() + timeout).await
}

struct Watch<'a> {
    shared: &'a Shared,
    q: ListQuery,
    mode: Mode,
    position: u64,
    epoch: u64,
}

/// What one look at the store gave.
enum Batch {
    Events(Vec<Value>),
    /// Compacted past this watch's position: the ERROR event.
    TooOld(Value),
    /// [`super::ApiHandle::close_watches`] or [`super::ApiHandle::expire`].
    Closed,
}

impl Watch<'_> {
    fn collect(&mut self) -> Batch {
        let store = lock(&self.shared.store);
        if store.epoch != self.epoch {
            return Batch::Closed;
        }
        match store.events_after(self.position) {
            Ok(events) => {
                self.position = store.rv;
                Batch::Events(
                    events
                        .iter()
                        .filter_map(|e| translate(&self.q, e))
                        .collect(),
                )
            }
            Err(At::TooOld(oldest)) => Batch::TooOld(status::expired(&status::too_old_message(
                self.position,
                oldest,
            ))),
            Err(At::TooLarge(_)) => Batch::Events(Vec::new()),
        }
    }

    async fn send(&self, conn: &mut Conn, events: &[Value]) -> bool {
        let mut bytes = Vec::new();
        for e in events {
            let mut e = e.clone();
            if self.mode.strip_addresses && e["type"] != "BOOKMARK" {
                strip_addresses(&mut e["object"]);
            }
            let mut line = e.to_string().into_bytes();
            line.push(b'\n');
            if self.mode.cut {
                bytes.extend_from_slice(&http::chunk(&line)[..line.len() / 2 + 4]);
                let _ = conn.write(&bytes).await;
                return false;
            }
            bytes.extend_from_slice(&http::chunk(&line));
        }
        bytes.is_empty() || conn.write(&bytes).await.is_ok()
    }

    async fn end(&self, conn: &mut Conn, last: Option<Value>) -> Flow {
        let mut bytes = Vec::new();
        if let Some(e) = last {
            let mut line = e.to_string().into_bytes();
            line.push(b'\n');
            bytes.extend_from_slice(&http::chunk(&line));
        }
        bytes.extend_from_slice(http::LAST_CHUNK);
        match conn.write(&bytes).await {
            Ok(()) => Flow::KeepAlive,
            Err(_) => Flow::Abort,
        }
    }

    async fn run(&mut self, conn: &mut Conn, start: Start, deadline: Instant) -> Flow {
        if let Some(status) = start.too_old {
            return self.end(conn, Some(event("ERROR", status))).await;
        }
        let mut first: Vec<Value> = start
            .initial
            .into_iter()
            .map(|o| event("ADDED", o))
            .collect();
        if start.end_marker && self.q.allow_watch_bookmarks {
            first.push(bookmark(self.position, true));
        }
        if self.mode.cut && first.is_empty() {
            first.push(bookmark(self.position, false));
        }
        if !self.send(conn, &first).await {
            return Flow::Abort;
        }
        let mut changed = self.shared.changed.subscribe();
        let mut shutdown = self.shared.shutdown.subscribe();
        let period = self
            .shared
            .opts
            .bookmark_period
            .max(Duration::from_millis(10));
        let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
        let mut bookmark_due = false;
        loop {
            let mut batch = match self.collect() {
                Batch::Events(events) => events,
                Batch::TooOld(status) => return self.end(conn, Some(event("ERROR", status))).await,
                Batch::Closed => return self.end(conn, None).await,
            };
            if std::mem::take(&mut bookmark_due) {
                batch.push(bookmark(self.position, false));
            }
            if !self.send(conn, &batch).await {
                return Flow::Abort;
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return Flow::Abort },
                _ = ticks.tick(), if self.q.allow_watch_bookmarks => bookmark_due = true,
                _ = tokio::time::sleep_until(deadline) => return self.end(conn, None).await,
                _ = conn.peer_closed() => return Flow::Abort,
                _ = super::stopped(&mut shutdown) => return Flow::Abort,
            }
        }
    }
}
