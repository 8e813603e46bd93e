//! Properties of the whole pure path (normalise → default rules → render):
//! output does not depend on the order Marathon lists apps in, and no label
//! value outside the template-override labels can start a new config line.

use crate::support;

use mlb_core::render::Renderer;
use mlb_core::{LabelInterpreter, RenderSettings, Templates, normalize_apps};
use mlb_model::{App, InterpretOptions};
use mlb_plugin_host::NativeLabelRules;
use proptest::prelude::*;

fn render(apps: &[App], settings: &RenderSettings) -> (String, String, String) {
    let options = InterpretOptions {
        groups: vec!["*".into()],
        min_serv_port_ip_per_task: 10050,
        max_serv_port_ip_per_task: 10100,
        ..InterpretOptions::default()
    };
    let services = NativeLabelRules.interpret(apps, &options).unwrap().services;
    let out = Renderer::new(Templates::defaults()).render(&services, settings);
    (out.config, out.domain_map, out.app_map)
}

/// Every corpus input whose output does not depend on input order by
/// marathon-lb's own definition (IP-per-task service-port auto-assignment
/// and deployment-group ties are order-dependent there too).
fn corpus_apps() -> Vec<(String, Vec<App>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(support::golden_dir()).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_none_or(|e| e != "json")
            || name.starts_with("ippt-")
            || name.starts_with("deployment-")
        {
            continue;
        }
        let apps = normalize_apps(&std::fs::read(&path).unwrap(), |h| Some(h.to_owned()))
            .unwrap()
            .apps;
        out.push((name, apps));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn output_is_independent_of_app_order(seed in any::<u64>(), map in any::<bool>()) {
        let settings = RenderSettings { haproxy_map: map, ..RenderSettings::default() };
        for (name, apps) in corpus_apps() {
            let expected = render(&apps, &settings);
            let mut shuffled = apps.clone();
            // Fisher-Yates with a small LCG driven by the seed.
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (state >> 33) as usize % (i + 1));
            }
            prop_assert!(render(&shuffled, &settings) == expected, "{} differs after shuffling", name);
        }
    }

    #[test]
    fn label_values_cannot_start_a_config_line(
        label in prop::sample::select(vec![
            "VHOST", "PATH", "BIND_OPTIONS", "BIND_ADDR", "SSL_CERT", "BALANCE", "AUTH", "MODE", "GROUP",
            "HTTP_BACKEND_PROXYPASS_PATH", "HTTP_BACKEND_REVPROXY_PATH", "HTTP_BACKEND_REDIR",
            "BACKEND_NETWORK_ALLOWED_ACL", "PORT", "BACKEND_WEIGHT", "STICKY", "ENABLED",
        ]),
        before in "[a-z0-9./:-]{0,12}",
        newline in prop::sample::select(vec!["\n", "\r\n", "\r", "\u{b}", "\u{c}", "\u{85}"]),
        map in any::<bool>(),
    ) {
        let doc = serde_json::json!({"apps": [
            {"id": "/evil", "labels": {
                "HAPROXY_GROUP": "external",
                "HAPROXY_0_VHOST": "evil.test",
                "HAPROXY_0_PATH": "/x",
                format!("HAPROXY_0_{label}"): format!("{before}{newline}  INJECTED directive"),
             },
             "portDefinitions": [{"port": 10000}],
             "tasks": [{"id": "t", "host": "10.0.0.1", "ports": [31000]}]},
            {"id": "/good", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "good.test"},
             "portDefinitions": [{"port": 10001}],
             "tasks": [{"id": "g", "host": "10.0.0.2", "ports": [31001]}]}
        ]});
        let apps = normalize_apps(doc.to_string().as_bytes(), |h| Some(h.to_owned())).unwrap().apps;
        let settings = RenderSettings { haproxy_map: map, ..RenderSettings::default() };
        let (config, domain_map, app_map) = render(&apps, &settings);
        for text in [&config, &domain_map, &app_map] {
            prop_assert!(!text.contains('\r'));
            prop_assert!(!text.lines().any(|l| l.trim_start().starts_with("INJECTED")), "injected:\n{}", text);
        }
        prop_assert!(config.contains("backend good_10001"));
    }
}

/// Which Marathon field of the hostile app carries the generated value.
const FIELDS: &[&str] = &[
    "id",
    "HAPROXY_DEPLOYMENT_GROUP",
    "healthChecks.path",
    "healthChecks.protocol",
    "tasks.host",
    "tasks.ipAddress",
    "VHOST",
    "PATH",
    "BIND_OPTIONS",
    "BIND_ADDR",
    "SSL_CERT",
    "BALANCE",
    "AUTH.realm",
    "AUTH.user",
    "AUTH.password",
    "MODE",
    "HTTP_BACKEND_PROXYPASS_PATH",
    "HTTP_BACKEND_REVPROXY_PATH",
    "HTTP_BACKEND_REDIR",
    "BACKEND_NETWORK_ALLOWED_ACL",
    "PORT",
];

/// A hostile app carrying `value` in `field`, with a second, clean task.
fn hostile(field: &str, value: &str) -> serde_json::Value {
    let mut app = serde_json::json!({
        "id": "/evil", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "evil.test",
                                  "HAPROXY_0_PATH": "/x", "HAPROXY_0_AUTH": "Realm:user:pass"},
        "portDefinitions": [{"port": 10000}],
        "healthChecks": [{"protocol": "HTTP", "path": "/h", "portIndex": 0, "timeoutSeconds": 2,
                          "intervalSeconds": 5, "gracePeriodSeconds": 10, "maxConsecutiveFailures": 3}],
        "tasks": [{"id": "t1", "host": "10.0.0.1", "ports": [31000]},
                  {"id": "t2", "host": "10.0.0.2", "ports": [31001]}]});
    match field {
        "id" => app["id"] = format!("/evil{value}").into(),
        "HAPROXY_DEPLOYMENT_GROUP" => app["labels"][field] = format!("evil{value}").into(),
        "healthChecks.path" => app["healthChecks"][0]["path"] = format!("/h{value}").into(),
        "healthChecks.protocol" => {
            app["healthChecks"][0]["protocol"] = format!("HTTP{value}").into()
        }
        "tasks.host" => app["tasks"][0]["host"] = format!("10.0.0.1{value}").into(),
        "tasks.ipAddress" => {
            app["ipAddress"] = serde_json::json!({"discovery": {"ports": [{"number": 8080}]}});
            app["tasks"][0]["ipAddresses"] =
                serde_json::json!([{"ipAddress": format!("10.1.0.1{value}")}]);
            app["tasks"][1]["ipAddresses"] = serde_json::json!([{"ipAddress": "10.1.0.2"}]);
        }
        "VHOST" => app["labels"]["HAPROXY_0_VHOST"] = format!("evil.test{value}").into(),
        "AUTH.realm" => app["labels"]["HAPROXY_0_AUTH"] = format!("Re{value}alm:user:pass").into(),
        "AUTH.user" => app["labels"]["HAPROXY_0_AUTH"] = format!("Realm:us{value}er:pass").into(),
        "AUTH.password" => {
            app["labels"]["HAPROXY_0_AUTH"] = format!("Realm:user:pa{value}ss").into()
        }
        label => app["labels"][format!("HAPROXY_0_{label}")] = format!("x{value}").into(),
    }
    app
}

/// The config split into sections: (header line, body lines).
fn sections_of(config: &str) -> Vec<(String, Vec<String>)> {
    let mut out = vec![(String::new(), Vec::new())];
    for line in config.lines() {
        if mlb_core::validate::opens_section(line).is_some() {
            out.push((line.to_owned(), Vec::new()));
        } else {
            out.last_mut().unwrap().1.push(line.to_owned());
        }
    }
    out
}

/// Whether `line`, read the way HAProxy reads it, expands anything from the
/// environment: `$` inside double quotes, or `%[env(` in a log-format argument.
fn expands(line: &str) -> bool {
    let mut quote = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                chars.next();
            }
            (None, '#') => break,
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '$') => return true,
            _ => {}
        }
    }
    line.contains("%[env(")
        && [
            "set-header",
            "add-header",
            "replace-header",
            "redirect",
            "return",
        ]
        .iter()
        .any(|d| line.contains(d))
}

fn hostile_value() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "a",
        "/",
        " ",
        "-",
        "\n",
        "\r",
        "\t",
        "\u{b}",
        "\u{c}",
        "\0",
        "\u{7f}",
        "\u{85}",
        "\u{2028}",
        "\u{2029}",
        "${SOME_VAR}",
        "$SOME_VAR",
        "%[env(SOME_VAR)]",
        "\"",
        "'",
        "\\",
        "#",
        "{",
        "}",
        "[",
        "]",
        "%",
        "backend injected",
        "  INJECTED directive",
        ".if 0",
        ",",
        ":",
        "é",
    ]);
    (
        prop::collection::vec(piece, 0..8),
        prop::bool::weighted(0.125),
    )
        .prop_map(|(pieces, huge)| {
            let v = pieces.concat();
            // Now and then a 1 MB value, with the hostile pieces at its end.
            if huge {
                format!("{}{v}", "a".repeat(1 << 20))
            } else {
                v
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Issue 15: a generated value (control characters, line separators,
    /// `${...}`, `%[...]`, quotes, backslashes, 1 MB) in any Marathon field
    /// that reaches the config injects no line, no section and no
    /// expansion, and changes nothing outside the app that carries it.
    #[test]
    fn no_marathon_value_injects_a_line_section_or_expansion(
        field in prop::sample::select(FIELDS.to_vec()),
        value in hostile_value(),
        map in any::<bool>(),
    ) {
        let good = serde_json::json!({"id": "/good", "labels": {"HAPROXY_GROUP": "external",
            "HAPROXY_0_VHOST": "good.test", "HAPROXY_0_AUTH": "Realm:user:pass"},
            "portDefinitions": [{"port": 10001}],
            "tasks": [{"id": "g", "host": "10.0.0.9", "ports": [31009]}]});
        let settings = RenderSettings { haproxy_map: map, ..RenderSettings::default() };
        let read = |apps: Vec<serde_json::Value>| {
            let doc = serde_json::json!({ "apps": apps }).to_string();
            normalize_apps(doc.as_bytes(), |h| Some(h.to_owned())).unwrap().apps
        };
        let (clean, clean_domains, clean_apps) = render(&read(vec![good.clone()]), &settings);
        let (config, domains, apps) = render(&read(vec![hostile(field, &value), good]), &settings);

        // No line was injected anywhere, no environment can be expanded.
        for text in [&config, &domains, &apps] {
            for line in text.lines() {
                let first = line.split_whitespace().next().unwrap_or("");
                prop_assert!(first != "INJECTED" && first != "injected", "injected line {:?}", line);
                prop_assert!(!line.contains(mlb_model::allowlist::is_line_break), "{:?}", line);
                prop_assert!(!expands(line), "expansion in {:?}", line);
            }
        }
        // No section besides the hostile app's own frontend, backend and userlist.
        let clean_sections = sections_of(&clean);
        let got = sections_of(&config);
        for (head, body) in &got {
            match clean_sections.iter().find(|(h, _)| h == head) {
                // A shared or good section: the good lines stay, in order, and
                // every added line belongs to the hostile app.
                Some((_, clean_body)) => {
                    let mut rest = body.iter();
                    for line in clean_body {
                        prop_assert!(rest.any(|l| l == line), "{:?} lost {:?}", head, line);
                    }
                    let theirs = body.iter().filter(|l| !clean_body.contains(l));
                    for line in theirs {
                        prop_assert!(line.contains("evil") || line.contains("%["),
                            "{:?}: foreign line {:?}", head, line);
                    }
                    if head.contains("good") {
                        prop_assert!(body == clean_body, "{:?} changed", head);
                    }
                }
                None => {
                    let mut words = head.split_whitespace();
                    let (kind, name) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                    prop_assert!(matches!(kind, "frontend" | "backend" | "userlist"), "section {:?}", head);
                    prop_assert!(name.contains("evil") && words.next().is_none(), "section {:?}", head);
                }
            }
        }
        prop_assert!(got.len() <= clean_sections.len() + 3, "{} sections", got.len());
        for (text, clean) in [(&domains, &clean_domains), (&apps, &clean_apps)] {
            for line in text.lines().filter(|l| !clean.lines().any(|c| c == *l)) {
                prop_assert!(line.contains("evil"), "foreign map line {:?}", line);
            }
        }
    }
}
