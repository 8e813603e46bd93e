//! Properties of the whole pure path (normalise → default rules → render):
//! output does not depend on the order Marathon lists apps in, and no label
//! value outside the template-override labels can start a new config line.

mod support;

use marathon_lb::plugin::NativeLabelRules;
use mlb_core::render::Renderer;
use mlb_core::{LabelInterpreter, RenderSettings, Templates, normalize_apps};
use mlb_model::{App, InterpretOptions};
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
