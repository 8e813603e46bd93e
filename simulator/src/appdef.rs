//! App definitions as written through the REST API ([`crate::deploy`]), checked and completed the way
//! Marathon does it.
//!
//! A body must be sent as `application/json` (415 otherwise) and be a JSON object (400 `Invalid JSON`).
//! A new app needs a string `id` (422 `Object is not valid`, `details` naming `/id`); runtime keys
//! (tasks, counts, deployments, …) in the body are ignored; `instances` (1), `labels` and `env` ({})
//! get Marathon's defaults. Service ports left at 0 (`portDefinitions[].port`,
//! `container.portMappings[].servicePort`) are assigned from 10000 up, skipping those other apps use.

use std::collections::HashSet;

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value, json};

use crate::apps::{App, RUNTIME_KEYS};
use crate::error::SimError;

/// The first service port Marathon hands out (its `--local_port_min`).
const SERVICE_PORT_MIN: u64 = 10_000;

/// The body of a write request: a JSON object sent as `application/json`.
pub(crate) fn json_object(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Map<String, Value>, SimError> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json_type {
        return Err(SimError::UnsupportedMediaType);
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(SimError::InvalidJson),
    }
}

/// A new app from a `POST /v2/apps` body: its `id` normalised to `/a/b`, runtime keys dropped,
/// Marathon's defaults filled in.
pub(crate) fn new_app(mut app: App) -> Result<App, SimError> {
    let invalid = |error: &str| SimError::Invalid {
        path: "/id".into(),
        error: error.into(),
    };
    let id = match app.get("id") {
        None => return Err(invalid("error.path.missing")),
        Some(Value::String(id)) => id.trim_matches('/').to_owned(),
        Some(_) => return Err(invalid("error.expected.jsstring")),
    };
    if id.is_empty() {
        return Err(invalid("error.path.missing"));
    }
    app.insert("id".into(), Value::from(format!("/{id}")));
    for key in RUNTIME_KEYS {
        app.remove(*key);
    }
    app.entry("instances").or_insert_with(|| json!(1));
    app.entry("labels").or_insert_with(|| json!({}));
    app.entry("env").or_insert_with(|| json!({}));
    app.entry("upgradeStrategy")
        .or_insert_with(|| json!({"minimumHealthCapacity": 1, "maximumOverCapacity": 1}));
    health_check_defaults(&mut app);
    Ok(app)
}

/// Marathon's defaults for every health check (spec §1.1): `protocol` HTTP,
/// `portIndex` 0 unless a `port` is given, `gracePeriodSeconds` 300,
/// `intervalSeconds` 60, `timeoutSeconds` 20, `maxConsecutiveFailures` 3,
/// `delaySeconds` 15.
fn health_check_defaults(app: &mut App) {
    let Some(checks) = app.get_mut("healthChecks").and_then(Value::as_array_mut) else {
        return;
    };
    for hc in checks.iter_mut().filter_map(Value::as_object_mut) {
        hc.entry("protocol").or_insert_with(|| json!("HTTP"));
        if !hc.contains_key("port") {
            hc.entry("portIndex").or_insert_with(|| json!(0));
        }
        for (key, default) in [
            ("gracePeriodSeconds", 300),
            ("intervalSeconds", 60),
            ("timeoutSeconds", 20),
            ("maxConsecutiveFailures", 3),
            ("delaySeconds", 15),
        ] {
            hc.entry(key).or_insert_with(|| json!(default));
        }
    }
}

/// The service-port slots of `app`: `portDefinitions[].port` and `container.portMappings[].servicePort`.
fn service_ports<'a>(app: &'a App) -> impl Iterator<Item = &'a Value> + 'a {
    let defs = app.get("portDefinitions").map(|d| (d, "port"));
    let maps = app
        .get("container")
        .and_then(|c| c.get("portMappings"))
        .map(|m| (m, "servicePort"));
    defs.into_iter()
        .chain(maps)
        .filter_map(|(list, field)| Some(list.as_array()?.iter().filter_map(move |i| i.get(field))))
        .flatten()
}

fn service_ports_mut(app: &mut App) -> Vec<&mut Value> {
    let mut slots = Vec::new();
    for (key, value) in app.iter_mut() {
        let (list, field) = match key.as_str() {
            "portDefinitions" => (Some(value), "port"),
            "container" => (value.get_mut("portMappings"), "servicePort"),
            _ => continue,
        };
        if let Some(items) = list.and_then(Value::as_array_mut) {
            slots.extend(items.iter_mut().filter_map(|i| i.get_mut(field)));
        }
    }
    slots
}

/// Replaces the service ports of 0 in `app` with the lowest ports from 10000 that none of `others`
/// (nor `app` itself) uses.
pub(crate) fn assign_service_ports(app: &mut App, others: &[App]) {
    let mut used: HashSet<u64> = others
        .iter()
        .chain(std::iter::once(&*app))
        .flat_map(service_ports)
        .filter_map(Value::as_u64)
        .collect();
    let mut next = SERVICE_PORT_MIN;
    for slot in service_ports_mut(app) {
        if slot.as_u64() == Some(0) {
            while used.contains(&next) {
                next += 1;
            }
            *slot = Value::from(next);
            used.insert(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> App {
        v.as_object().expect("object").clone()
    }

    #[test]
    fn zero_service_ports_get_free_ones() {
        let others = [obj(
            json!({"id": "/a", "portDefinitions": [{"port": 10000}]}),
        )];
        let mut app = obj(json!({"id": "/b", "container": {"portMappings": [
            {"containerPort": 80, "servicePort": 0}, {"containerPort": 81, "servicePort": 10001},
            {"containerPort": 82, "servicePort": 0}
        ]}}));
        assign_service_ports(&mut app, &others);
        let ports: Vec<_> = service_ports(&app).filter_map(Value::as_u64).collect();
        assert_eq!(ports, [10002, 10001, 10003]);
    }

    #[test]
    fn new_apps_get_marathons_defaults_and_need_an_id() {
        let app =
            new_app(obj(json!({"id": "a/b/", "tasks": [], "env": {"X": "1"}}))).expect("valid");
        assert_eq!(app["id"], "/a/b");
        assert_eq!(
            (&app["instances"], &app["labels"], &app["env"]),
            (&json!(1), &json!({}), &json!({"X": "1"}))
        );
        assert!(!app.contains_key("tasks"));
        assert_eq!(app["upgradeStrategy"]["minimumHealthCapacity"], 1);
        let app = new_app(obj(
            json!({"id": "c", "healthChecks": [{"path": "/h"}, {"protocol": "TCP", "port": 8080}]}),
        ))
        .expect("valid");
        let hc = &app["healthChecks"];
        assert_eq!(
            (
                &hc[0]["protocol"],
                &hc[0]["portIndex"],
                &hc[0]["timeoutSeconds"]
            ),
            (&json!("HTTP"), &json!(0), &json!(20))
        );
        assert_eq!(hc[0]["path"], "/h");
        assert!(hc[1].get("portIndex").is_none());
        assert_eq!(hc[1]["gracePeriodSeconds"], 300);
        for bad in [json!({}), json!({"id": "/"}), json!({"id": 7})] {
            let err = new_app(obj(bad.clone())).expect_err("invalid");
            assert!(
                matches!(err, SimError::Invalid { ref path, .. } if path == "/id"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn bodies_must_be_json_objects_sent_as_json() {
        let mut headers = HeaderMap::new();
        let body = Bytes::from_static(b"{\"id\": \"/x\"}");
        assert_eq!(
            json_object(&headers, &body),
            Err(SimError::UnsupportedMediaType)
        );
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().expect("value"),
        );
        assert!(json_object(&headers, &body).is_ok());
        for bad in [&b"{not json"[..], b"[1]"] {
            assert_eq!(
                json_object(&headers, &Bytes::copy_from_slice(bad)),
                Err(SimError::InvalidJson)
            );
        }
    }
}
