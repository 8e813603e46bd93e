//! The deployment bookkeeping, pure: validating the app JSON, choosing the
//! colour, service port and instance counts of the next deploy, writing the
//! `HAPROXY_DEPLOYMENT_*` labels as zdd.py does, and the scale-up
//! arithmetic.
//!
//! Fixed against zdd.py: apps with only `portDefinitions` (zdd.py crashes),
//! the third deploy on Marathon ≥ 1.5 (whose apps have no `ports`, so zdd.py
//! asked for the alternate port again), and deployment groups containing
//! `/` (zdd.py looked for a backend name marathon-lb never writes).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::error::ZddError;

pub const GROUP: &str = "HAPROXY_DEPLOYMENT_GROUP";
pub const ALT_PORT: &str = "HAPROXY_DEPLOYMENT_ALT_PORT";
pub const COLOUR: &str = "HAPROXY_DEPLOYMENT_COLOUR";
pub const STARTED_AT: &str = "HAPROXY_DEPLOYMENT_STARTED_AT";
pub const TARGET_INSTANCES: &str = "HAPROXY_DEPLOYMENT_TARGET_INSTANCES";
pub const NEW_INSTANCES: &str = "HAPROXY_DEPLOYMENT_NEW_INSTANCES";
pub const APP_ID: &str = "HAPROXY_APP_ID";
pub const PORT_0: &str = "HAPROXY_0_PORT";

/// A label of `app` (marathon-lb reads labels as strings).
pub fn label<'a>(app: &'a Value, name: &str) -> Option<&'a str> {
    app.get("labels")?.get(name)?.as_str()
}

/// A label that must be an integer; `None` when absent.
fn int_label(app: &Value, name: &str) -> Result<Option<u64>, ZddError> {
    match app.get("labels").and_then(|l| l.get(name)) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| bad_int(app, name)),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad_int(app, name)),
        Some(_) => Err(bad_int(app, name)),
    }
}

fn bad_int(app: &Value, name: &str) -> ZddError {
    ZddError::missing(
        name,
        format!(
            "app {}: label {name} must be a non-negative integer",
            app_id(app)
        ),
    )
}

/// The app's `id` ("" when missing).
pub fn app_id(app: &Value) -> &str {
    app.get("id").and_then(Value::as_str).unwrap_or("")
}

/// The app's `instances` (Marathon's default 1 when missing).
pub fn instances(app: &Value) -> u64 {
    app.get("instances").and_then(Value::as_u64).unwrap_or(1)
}

/// The deployment group label.
pub fn group(app: &Value) -> Option<&str> {
    label(app, GROUP)
}

/// `HAPROXY_DEPLOYMENT_TARGET_INSTANCES`, else the app's instances.
pub fn target_instances(app: &Value) -> u64 {
    int_label(app, TARGET_INSTANCES)
        .ok()
        .flatten()
        .unwrap_or_else(|| instances(app))
}

/// `HAPROXY_DEPLOYMENT_NEW_INSTANCES`, else 0.
pub fn new_instance_count(app: &Value) -> u64 {
    int_label(app, NEW_INSTANCES).ok().flatten().unwrap_or(0)
}

/// The HAProxy backend marathon-lb builds for the group: the merged app's id
/// is `/<group>`, so the name is the group without its leading `/`, with
/// `/` → `_`, then `_<HAPROXY_0_PORT>`.
pub fn backend_name(app: &Value) -> Option<String> {
    let group = group(app)?;
    let id = group.strip_prefix('/').unwrap_or(group);
    let port = label(app, PORT_0)?;
    Some(format!("{}_{port}", id.replace('/', "_")))
}

/// Recursively drop `null` values from objects (as marathon-lb's `cleanup_json`).
pub fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// What zdd.py requires of the app JSON: an `id`, labels, the deployment
/// group and the alternate port (an integer).
pub fn validate(app: &Value) -> Result<(), ZddError> {
    if !app.is_object() {
        return Err(ZddError::missing("id", "the app JSON must be an object"));
    }
    if app
        .get("id")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(ZddError::missing(
            "id",
            "App doesn't contain a valid App ID",
        ));
    }
    if !app.get("labels").is_some_and(Value::is_object) {
        return Err(ZddError::missing(
            "labels",
            format!(
                "app {}: no labels found. Please define the {GROUP} label",
                app_id(app)
            ),
        ));
    }
    match group(app) {
        None => {
            return Err(ZddError::missing(
                GROUP,
                format!("app {}: please define the {GROUP} label", app_id(app)),
            ));
        }
        Some("") | Some("/") => {
            return Err(ZddError::missing(
                GROUP,
                format!("app {}: the {GROUP} label is empty", app_id(app)),
            ));
        }
        Some(_) => {}
    }
    if int_label(app, ALT_PORT)?.is_none() {
        return Err(ZddError::missing(
            ALT_PORT,
            format!("app {}: please define the {ALT_PORT} label", app_id(app)),
        ));
    }
    Ok(())
}

fn port_mappings(app: &Value) -> Option<&Vec<Value>> {
    let container = app.get("container")?;
    container
        .get("docker")
        .and_then(|d| d.get("portMappings"))
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .or_else(|| {
            container
                .get("portMappings")
                .and_then(Value::as_array)
                .filter(|m| !m.is_empty())
        })
}

fn positive(v: Option<&Value>) -> Option<u64> {
    v.and_then(Value::as_u64).filter(|p| *p > 0)
}

/// The first service port: docker / container `portMappings[0].servicePort`,
/// else `portDefinitions[0].port`, else `ports[0]`.
pub fn service_port(app: &Value) -> Option<u64> {
    if let Some(p) = port_mappings(app).and_then(|m| positive(m[0].get("servicePort"))) {
        return Some(p);
    }
    let first = |key: &str| {
        app.get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .cloned()
    };
    if let Some(p) = positive(
        first("portDefinitions")
            .as_ref()
            .and_then(|d| d.get("port")),
    ) {
        return Some(p);
    }
    positive(first("ports").as_ref())
}

/// Write `port` as the first service port, where [`service_port`] reads it.
fn set_service_port(app: &mut Value, port: u64) {
    let container = app.get_mut("container");
    if let Some(container) = container {
        for path in [&["docker", "portMappings"][..], &["portMappings"][..]] {
            let mut node = Some(&mut *container);
            for key in path {
                node = node.and_then(|n| n.get_mut(*key));
            }
            if let Some(Value::Array(m)) = node
                && let Some(Value::Object(first)) = m.first_mut()
            {
                first.insert("servicePort".into(), port.into());
                return;
            }
        }
    }
    if let Some(Value::Object(def)) = app
        .get_mut("portDefinitions")
        .and_then(Value::as_array_mut)
        .and_then(|d| d.first_mut())
    {
        def.insert("port".into(), port.into());
    }
    if let Some(Value::Array(ports)) = app.get_mut("ports")
        && let Some(first) = ports.first_mut()
    {
        *first = port.into();
    }
}

/// Previous deploys sorted by `HAPROXY_DEPLOYMENT_STARTED_AT` (missing =
/// "0"), oldest first; stable like Python's sort.
pub fn sort_deploys(apps: &mut [Value]) {
    apps.sort_by(|a, b| {
        let key = |app: &Value| label(app, STARTED_AT).unwrap_or("0").to_owned();
        key(a).cmp(&key(b))
    });
}

/// The service port for the next deploy after `last`: its alternate port,
/// unless `last` already uses it (then the original `HAPROXY_0_PORT`).
/// zdd.py looked at `ports` only, which Marathon ≥ 1.5 no longer returns.
fn next_port(last: &Value) -> Result<u64, ZddError> {
    let alt = int_label(last, ALT_PORT)?.ok_or_else(|| {
        ZddError::missing(
            ALT_PORT,
            format!(
                "the running app {} has no {ALT_PORT} label; add it (redeploy it with the label) first",
                app_id(last)
            ),
        )
    })?;
    if service_port(last) == Some(alt) {
        return int_label(last, PORT_0)?.ok_or_else(|| {
            ZddError::missing(
                PORT_0,
                format!(
                    "the running app {} uses the alternate port {alt} but has no {PORT_0} label",
                    app_id(last)
                ),
            )
        });
    }
    Ok(alt)
}

/// Counts for [`prepare`].
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    /// `--initial-instances`.
    pub initial_instances: u64,
    /// `--new-instances`.
    pub new_instances: u64,
}

/// The next deploy of `app` given the group's `previous` deploys (sorted
/// oldest first): blue first, then alternating; the alternate port on every
/// other deploy; the labels zdd.py writes. `now` is the start timestamp.
pub fn prepare(
    mut app: Value,
    previous: &[Value],
    counts: Counts,
    now: &str,
) -> Result<Value, ZddError> {
    let own_port = service_port(&app).ok_or_else(|| {
        ZddError::missing(
            "container.portMappings",
            format!(
                "app {}: App doesn't contain a service port (set container.portMappings[0].servicePort, portDefinitions[0].port or ports[0])",
                app_id(&app)
            ),
        )
    })?;
    let (colour, port, target, new_instances, instances) = match previous.last() {
        Some(last) => {
            let colour = if label(last, COLOUR) == Some("blue") {
                "green"
            } else {
                "blue"
            };
            let target = instances(last);
            let new_instances = counts.new_instances.min(target);
            let cap = if new_instances > 0 {
                new_instances
            } else {
                target
            };
            let n = counts.initial_instances.min(cap);
            (colour, next_port(last)?, target, new_instances, n)
        }
        None => ("blue", own_port, instances(&app), 0, instances(&app)),
    };
    let obj = app.as_object_mut().expect("validated: an object");
    obj.insert("instances".into(), instances.into());
    let raw_id = app_id(&app).to_owned();
    let mut id = format!("{raw_id}-{colour}");
    if !id.starts_with('/') {
        id.insert(0, '/');
    }
    app["id"] = id.into();
    set_service_port(&mut app, port);
    let labels: &mut Map<String, Value> = app["labels"].as_object_mut().expect("validated");
    let mut set = |k: &str, v: String| {
        labels.insert(k.to_owned(), v.into());
    };
    set(APP_ID, raw_id);
    set(PORT_0, own_port.to_string());
    set(NEW_INSTANCES, new_instances.to_string());
    set(TARGET_INSTANCES, target.to_string());
    set(COLOUR, colour.to_owned());
    set(STARTED_AT, now.to_owned());
    Ok(app)
}

/// The next instance count of the new app: +50 % (`n + (n+1)/2`, rounded
/// down) or `+linear` per step; once at or above the old app's instances,
/// straight to the target; in hybrid mode at most `NEW_INSTANCES`.
pub fn next_scale(new_app: &Value, old_instances: u64, linear: u64, hybrid: bool) -> u64 {
    let n = instances(new_app);
    let mut next = if linear > 0 {
        n + linear
    } else {
        n + n.div_ceil(2)
    };
    if hybrid {
        next = next.min(new_instance_count(new_app));
    } else if next >= old_instances {
        next = target_instances(new_app);
    }
    next.min(target_instances(new_app).max(n))
}

/// `datetime.now().isoformat()` as zdd.py writes it (UTC here):
/// `2016-02-01T15:51:38.184623`, the fraction left out when it is zero.
pub fn started_at(now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let micros = d.subsec_micros();
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if micros != 0 {
        out.push_str(&format!(".{micros:06}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn counts(initial: u64, new: u64) -> Counts {
        Counts {
            initial_instances: initial,
            new_instances: new,
        }
    }

    #[test]
    fn timestamps_in_python_isoformat() {
        let t = UNIX_EPOCH + Duration::from_micros(1_454_341_898_184_623);
        assert_eq!(started_at(t), "2016-02-01T15:51:38.184623");
        assert_eq!(
            started_at(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00"
        );
    }

    #[test]
    fn service_port_from_port_definitions_only() {
        // zdd.py: `['portDefinitions'][0]` → crash.
        let app = json!({"id": "a", "portDefinitions": [{"port": 10000}]});
        assert_eq!(service_port(&app), Some(10000));
        let mut app = app;
        set_service_port(&mut app, 10001);
        assert_eq!(app["portDefinitions"][0]["port"], 10001);
        assert!(app.get("ports").is_none());
    }

    #[test]
    fn third_deploy_on_marathon_1_5_goes_back_to_the_original_port() {
        // Marathon ≥ 1.5 returns no `ports`: the green app on the alternate
        // port must be recognised from its portDefinitions / portMappings.
        let green = json!({"id": "/nginx-green", "instances": 3,
            "labels": {GROUP: "nginx", ALT_PORT: "10001", PORT_0: "10000", COLOUR: "green"},
            "container": {"portMappings": [{"containerPort": 80, "servicePort": 10001}]}});
        assert_eq!(next_port(&green).unwrap(), 10000);
        let blue = json!({"id": "/nginx-blue", "instances": 3,
            "labels": {GROUP: "nginx", ALT_PORT: "10001", PORT_0: "10000", COLOUR: "blue"},
            "portDefinitions": [{"port": 10000}]});
        assert_eq!(next_port(&blue).unwrap(), 10001);
    }

    #[test]
    fn backend_name_as_marathon_lb_writes_it() {
        let app = json!({"labels": {GROUP: "shop/web", PORT_0: "10000"}});
        assert_eq!(backend_name(&app).unwrap(), "shop_web_10000");
        let app = json!({"labels": {GROUP: "/shop", PORT_0: "10000"}});
        assert_eq!(backend_name(&app).unwrap(), "shop_10000");
    }

    #[test]
    fn scale_arithmetic_as_zdd_py() {
        let new = json!({"instances": 10, "labels": {TARGET_INSTANCES: "30"}});
        assert_eq!(next_scale(&new, 30, 0, false), 15);
        assert_eq!(next_scale(&new, 8, 0, false), 30);
        assert_eq!(next_scale(&new, 30, 3, false), 13);
        let hybrid =
            json!({"instances": 10, "labels": {TARGET_INSTANCES: "30", NEW_INSTANCES: "15"}});
        assert_eq!(next_scale(&hybrid, 20, 0, true), 15);
        let one = json!({"instances": 1, "labels": {TARGET_INSTANCES: "3"}});
        assert_eq!(next_scale(&one, 3, 0, false), 2);
    }

    #[test]
    fn validation_names_the_missing_piece() {
        let err = validate(&json!({"id": "a", "labels": {ALT_PORT: "1"}})).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().contains(GROUP), "{err}");
        let err = validate(&json!({"id": "a", "labels": {GROUP: "g"}})).unwrap_err();
        assert!(err.to_string().contains(ALT_PORT), "{err}");
        let err = validate(&json!({"id": "a", "labels": {GROUP: "g", ALT_PORT: "x"}})).unwrap_err();
        assert!(err.to_string().contains("integer"), "{err}");
        assert!(validate(&json!({"id": "a", "labels": {GROUP: "g", ALT_PORT: 10001}})).is_ok());
    }

    #[test]
    fn prepare_first_second_third() {
        let app = json!({"id": "nginx", "instances": 3,
            "labels": {GROUP: "nginx", ALT_PORT: "10001"},
            "portDefinitions": [{"port": 10000}]});
        let blue = prepare(app.clone(), &[], counts(1, 0), "t1").unwrap();
        assert_eq!(blue["id"], "/nginx-blue");
        assert_eq!(blue["instances"], 3);
        assert_eq!(blue["labels"][TARGET_INSTANCES], "3");
        let green = prepare(app.clone(), std::slice::from_ref(&blue), counts(1, 0), "t2").unwrap();
        assert_eq!(green["id"], "/nginx-green");
        assert_eq!(green["portDefinitions"][0]["port"], 10001);
        assert_eq!(green["instances"], 1);
        assert_eq!(green["labels"][PORT_0], "10000");
        let mut green = green;
        green["instances"] = json!(3); // scaled up by the swap
        let blue2 = prepare(app, &[green], counts(5, 0), "t3").unwrap();
        assert_eq!(blue2["id"], "/nginx-blue");
        assert_eq!(blue2["portDefinitions"][0]["port"], 10000);
        assert_eq!(blue2["instances"], 3);
    }
}
