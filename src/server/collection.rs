//! The `/items/` collection: items added, changed and marked deleted, and its changes feed
//! (`changes`, `changes-wait`, `changes-stream`) with checkpoints in the URI that expire once
//! the bounded history no longer reaches back to them.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::app::App;
use super::checks::{allowed, json_body, JSON};
use super::conditional::held_wait;
use super::dialect::{query_param, Fault, Form, RequestView, Shape};
use super::object_response::{multiplex_links, object_response, poll_interval};
use super::objects::object_get;
use super::store::{StoreError, ITEMS};
use super::streams;
use crate::http1::{Reply, Request, Response};

const COLLECTION_METHODS: &str = "GET, HEAD, POST, OPTIONS";
const ITEM_METHODS: &str = "GET, HEAD, PUT, DELETE, OPTIONS";

/// `/items/` and `/items/{id}`.
pub(crate) fn handle(app: &Arc<App>, ctx: &RequestView, request: &Request) -> Reply {
    let rest = &request.path[ITEMS.len().min(request.path.len())..];
    if request.path == ITEMS {
        if let Some(r) = allowed(request, COLLECTION_METHODS) {
            return r.into();
        }
        return match request.method.as_str() {
            "POST" => add(app, request).into(),
            _ => collection_get(app, ctx, request),
        };
    }
    let Some(id) = rest
        .parse::<u64>()
        .ok()
        .filter(|_| !rest.starts_with('0') && rest.len() <= 19)
    else {
        return Response::error(
            404,
            &format!(
                "no item at {}: item ids are the numbers POST /items/ returns",
                request.path
            ),
        )
        .into();
    };
    if let Some(r) = allowed(request, ITEM_METHODS) {
        return r.into();
    }
    let store = &app.store;
    match request.method.as_str() {
        "PUT" => match object_fields(request) {
            Ok(fields) => match store.set_item(id, fields) {
                Ok(()) => item_now(ctx, app, id),
                Err(e) => item_error(id, e),
            },
            Err(r) => r,
        },
        "DELETE" => match store.delete_item(id) {
            Ok(()) => Response::new(204),
            Err(e) => item_error(id, e),
        },
        _ => return object_get(app, ctx, request, &format!("{ITEMS}{id}")),
    }
    .into()
}

fn item_now(ctx: &RequestView, app: &App, id: u64) -> Response {
    let key = format!("{ITEMS}{id}");
    match app.store.snapshot(&key) {
        Some(snap) => object_response(ctx, 200, &key, &snap),
        None => item_error(id, StoreError::NotFound),
    }
}

fn item_error(id: u64, e: StoreError) -> Response {
    match e {
        StoreError::NotFound => Response::error(404, &format!("there is no item {id}")),
        StoreError::Full => Response::error(507, "the collection is full"),
        _ => Response::error(400, "this item cannot be changed so"),
    }
}

/// A body that must be a JSON object.
fn object_fields(request: &Request) -> Result<serde_json::Map<String, Value>, Response> {
    match json_body(request)? {
        Value::Object(fields) => Ok(fields),
        _ => Err(Response::error(
            400,
            "an item is a JSON object, e.g. {\"text\":\"hi\"}",
        )),
    }
}

/// `POST /items/`: 201 with the new item and its `Location`.
fn add(app: &App, request: &Request) -> Response {
    let fields = match object_fields(request) {
        Ok(f) => f,
        Err(r) => return r,
    };
    match app.store.add_item(fields) {
        Ok(id) => {
            let value = app
                .store
                .snapshot(&format!("{ITEMS}{id}"))
                .and_then(|s| s.value)
                .unwrap_or_default();
            Response::new(201)
                .header("Location", format!("{ITEMS}{id}"))
                .body(JSON, value)
        }
        Err(e) => item_error(0, e),
    }
}

/// What the collection advertises, with `checkpoint` as the changes link.
fn collection_headers(ctx: &RequestView, checkpoint: u64) -> Vec<(String, String)> {
    let mut h = Vec::new();
    let mut link = |v: String| h.push(("Link".to_owned(), v));
    let c = checkpoint.to_string();
    let form = ctx.form;
    if ctx.offers("changes") {
        let wait_min: &[(&str, &str)] = if form.is_none() || form == Some(Form::C) {
            &[("wait-min", "1")]
        } else {
            &[]
        };
        link(ctx.link(ITEMS, &[("since", &c)], "changes", wait_min));
    }
    if ctx.offers("changes-wait") {
        link(ctx.link(ITEMS, &[("since", &c)], "changes-wait", &[]));
    }
    if ctx.offers("changes-stream") {
        link(ctx.link(
            ITEMS,
            &[("stream", "changes"), ("since", &c)],
            "changes-stream",
            &[],
        ));
        link(ctx.link(
            ITEMS,
            &[("stream", "changes"), ("since", &c), ("mode", "reliable")],
            "changes-stream",
            &[("mode", "reliable")],
        ));
    }
    if ctx.offers("changes-callback") {
        if form != Some(Form::C) {
            link(ctx.link(
                "/subscriptions/",
                &[("uri", ITEMS)],
                "changes-callback",
                &[],
            ));
        }
        if form.is_none() || form == Some(Form::C) {
            link(ctx.link(
                "/subscriptions/",
                &[("uri", ITEMS)],
                "changes-callbacks",
                &[],
            ));
        }
    }
    multiplex_links(ctx, &mut link);
    poll_interval(ctx, &mut h);
    h
}

/// `GET /items/`: the list, the changes since a checkpoint (held while empty when a wait is
/// asked for), or the changes stream.
fn collection_get(app: &Arc<App>, ctx: &RequestView, request: &Request) -> Reply {
    if request.method == "GET" {
        match query_param(request, "stream").as_deref() {
            Some("changes") => {
                return streams::changes_stream(&app.store, &app.cfg, ctx, request, Form::A)
            }
            Some(other) => {
                return Response::error(
                    400,
                    &format!("stream={other:?}: the collection has stream=changes"),
                )
                .into()
            }
            None if streams::accepts_event_stream(request) => {
                // B's way to ask, so B's events in every dialect unless `?form=` says
                // otherwise, with the headers of the form answered (`Changes-Id`).
                let ctx = &ctx.answering(ctx.answer_form(Shape::B));
                return streams::changes_stream(&app.store, &app.cfg, ctx, request, Form::B);
            }
            None => {}
        }
    }
    let since = match streams::checkpoint_param(request) {
        Ok(s) => s,
        Err(r) => return r.into(),
    };
    let Some(since) = since else {
        let (items, checkpoint) = app.store.items();
        let mut response = Response::new(200);
        for (n, v) in collection_headers(ctx, checkpoint) {
            response = response.header(&n, v);
        }
        return response.body(JSON, Value::Array(items).to_string()).into();
    };
    let wait = match held_wait(&app.cfg, request) {
        Ok(w) => w,
        Err(r) => return r.into(),
    };
    // Subscribed before the first read, so a change in between wakes the hold.
    let sub = app.store.subscribe(&[ITEMS]);
    let deadline = wait
        .filter(|w| !w.is_zero() && request.method == "GET")
        .map(|w| Instant::now() + w);
    let changes = loop {
        let changes = match app.store.changes_since(since) {
            Ok(c) => c,
            Err(e) => return streams::checkpoint_error(e).into(),
        };
        match deadline {
            Some(d) if changes.items.is_empty() && Instant::now() < d => {
                if sub.wait(d).cut {
                    break changes;
                }
            }
            _ => break changes,
        }
    };
    // The `stale-changes` fault hands out the checkpoint asked for as the next one.
    let next = if app.cfg.has(Fault::StaleChanges) {
        since
    } else {
        changes.next
    };
    let mut response = Response::new(200);
    for (n, v) in streams::changes_headers(ctx, next, since) {
        response = response.header(&n, v);
    }
    if ctx.offers("changes-wait") {
        let next = next.to_string();
        response = response.header(
            "Link",
            ctx.link(ITEMS, &[("since", &next)], "changes-wait", &[]),
        );
    }
    response
        .body(JSON, Value::Array(changes.items).to_string())
        .into()
}
