use super::*;
use crate::engine::Engine;
use crate::templates::Templates;

fn routing(vhosts: &str) -> Routing<'_> {
    Routing {
        vhosts: vhosts.split(',').collect(),
        path: false,
        auth: false,
        redirect: false,
        map: false,
        map_http_done: false,
        map_https_done: false,
    }
}

/// The plan as one line per step: `http TEMPLATE @vhost` (the vhost only
/// when the template gets `{hostname}`), `https(vhost) ...`, `shared ...`,
/// `tls vhost`, `share vhost`, `claim http|https`, `map vhost`.
fn describe(r: &Routing<'_>) -> Vec<String> {
    plan(r)
        .iter()
        .map(|step| match step {
            Step::Tls(v) => format!("tls {v}"),
            Step::ShareHead(v) => format!("share {v}"),
            Step::ClaimMap(MapSide::Http) => "claim http".to_owned(),
            Step::ClaimMap(MapSide::Https) => "claim https".to_owned(),
            Step::DomainEntry(v) => format!("map {v}"),
            Step::Emit(acl) => {
                let sink = match acl.sink {
                    Sink::Http => "http".to_owned(),
                    Sink::HttpsShared => "shared".to_owned(),
                    Sink::Https(v) => format!("https({v})"),
                };
                let host = if acl.vars.contains(&Var::Host) {
                    format!(" @{}", acl.vhost)
                } else {
                    String::new()
                };
                format!("{sink} {}{host}", acl.template)
            }
        })
        .collect()
}

#[test]
fn plain_vhost() {
    assert_eq!(
        describe(&routing("a.test")),
        [
            "tls a.test",
            "http HTTP_FRONTEND_ACL @a.test",
            "https(a.test) HTTPS_FRONTEND_ACL @a.test",
        ]
    );
}

#[test]
fn vhost_with_path() {
    let r = Routing {
        path: true,
        ..routing("a.test")
    };
    assert_eq!(
        describe(&r),
        [
            "tls a.test",
            "http HTTP_FRONTEND_ACL_WITH_PATH @a.test",
            "https(a.test) HTTPS_FRONTEND_ACL_ONLY_WITH_PATH",
            "https(a.test) HTTPS_FRONTEND_ACL_WITH_PATH @a.test",
        ]
    );
}

#[test]
fn vhost_with_auth() {
    let r = Routing {
        auth: true,
        ..routing("a.test")
    };
    assert_eq!(
        describe(&r),
        [
            "tls a.test",
            "http HTTP_FRONTEND_ACL_WITH_AUTH @a.test",
            "https(a.test) HTTPS_FRONTEND_ACL_WITH_AUTH @a.test",
        ]
    );
    // Auth wins over map mode: no map entries, no lookups.
    let r = Routing { map: true, ..r };
    assert_eq!(
        describe(&r),
        [
            "tls a.test",
            "http HTTP_FRONTEND_ACL_WITH_AUTH @a.test",
            "https(a.test) HTTPS_FRONTEND_ACL_WITH_AUTH @a.test",
        ]
    );
}

#[test]
fn vhost_with_auth_and_path() {
    let r = Routing {
        auth: true,
        path: true,
        ..routing("a.test")
    };
    assert_eq!(
        describe(&r),
        [
            "tls a.test",
            "http HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH @a.test",
            "https(a.test) HTTPS_FRONTEND_ACL_ONLY_WITH_PATH",
            "https(a.test) HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH @a.test",
        ]
    );
}

#[test]
fn redirect_to_https() {
    let r = Routing {
        redirect: true,
        ..routing("a.test")
    };
    assert_eq!(
        describe(&r),
        [
            "tls a.test",
            "http HTTP_FRONTEND_ACL @a.test",
            "http BACKEND_REDIRECT_HTTP_TO_HTTPS",
            "https(a.test) HTTPS_FRONTEND_ACL @a.test",
        ]
    );
    // The redirect beats auth on :80 only.
    let r = Routing {
        path: true,
        auth: true,
        ..r
    };
    assert_eq!(
        describe(&r),
        [
            "tls a.test",
            "http HTTP_FRONTEND_ACL_ONLY @a.test",
            "http HTTP_FRONTEND_ACL_ONLY_WITH_PATH @a.test",
            "http BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH",
            "https(a.test) HTTPS_FRONTEND_ACL_ONLY_WITH_PATH",
            "https(a.test) HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH @a.test",
        ]
    );
}

#[test]
fn map_mode_first_user_renders_the_lookups_later_ones_only_add_entries() {
    let first = Routing {
        map: true,
        ..routing("a.test")
    };
    assert_eq!(
        describe(&first),
        [
            "tls a.test",
            "claim http",
            "http MAP_HTTP_FRONTEND_ACL",
            "map a.test",
            "map a.test",
            "claim https",
            "https(a.test) MAP_HTTPS_FRONTEND_ACL @a.test",
        ]
    );
    let later = Routing {
        map_http_done: true,
        map_https_done: true,
        ..first.clone()
    };
    assert_eq!(describe(&later), ["tls a.test", "map a.test", "map a.test"]);
    // A path is routed by ACLs, not by the map.
    let with_path = Routing {
        path: true,
        ..later
    };
    assert!(!describe(&with_path).iter().any(|s| s.starts_with("map")));
    // A redirect keeps :80 out of the map but not :443.
    let redirect = Routing {
        redirect: true,
        ..first
    };
    assert_eq!(
        describe(&redirect),
        [
            "tls a.test",
            "http HTTP_FRONTEND_ACL @a.test",
            "http BACKEND_REDIRECT_HTTP_TO_HTTPS",
            "map a.test",
            "claim https",
            "https(a.test) MAP_HTTPS_FRONTEND_ACL @a.test",
        ]
    );
}

#[test]
fn several_vhosts_get_one_acl_each_and_one_routing_rule() {
    assert_eq!(
        describe(&routing("a.test,b.test")),
        [
            "share a.test",
            "tls a.test",
            "http HTTP_FRONTEND_ACL_ONLY @a.test",
            "https(a.test) HTTPS_FRONTEND_ACL @a.test",
            "share b.test",
            "tls b.test",
            "http HTTP_FRONTEND_ACL_ONLY @b.test",
            "https(b.test) HTTPS_FRONTEND_ACL @b.test",
            "http HTTP_FRONTEND_ROUTING_ONLY",
        ]
    );
    let r = Routing {
        path: true,
        auth: true,
        ..routing("a.test,b.test")
    };
    assert_eq!(
        describe(&r),
        [
            "http HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH @a.test",
            "shared HTTPS_FRONTEND_ACL_ONLY_WITH_PATH @a.test",
            "share a.test",
            "tls a.test",
            "http HTTP_FRONTEND_ACL_ONLY @a.test",
            "https(a.test) HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH @a.test",
            "share b.test",
            "tls b.test",
            "http HTTP_FRONTEND_ACL_ONLY @b.test",
            "https(b.test) HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH @b.test",
            "http HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH",
        ]
    );
    let r = Routing {
        redirect: true,
        ..routing("a.test,b.test")
    };
    assert_eq!(
        describe(&r).last().map(String::as_str),
        Some("http BACKEND_REDIRECT_HTTP_TO_HTTPS")
    );
}

#[test]
fn several_vhosts_in_map_mode_claim_each_lookup_once() {
    let r = Routing {
        map: true,
        ..routing("a.test,b.test")
    };
    assert_eq!(
        describe(&r),
        [
            "share a.test",
            "tls a.test",
            "claim http",
            "http MAP_HTTP_FRONTEND_ACL_ONLY",
            "map a.test",
            "claim https",
            "https(a.test) MAP_HTTPS_FRONTEND_ACL @a.test",
            "map a.test",
            "share b.test",
            "tls b.test",
            "map b.test",
            "map b.test",
        ]
    );
}

/// Every combination's templates use only variables their step offers
/// (the defaults, checked as the renderer checks a label override).
#[test]
fn default_templates_get_every_variable_they_use() {
    let templates = Templates::defaults();
    let mut engine = Engine::new();
    let mut emitted = std::collections::BTreeSet::new();
    for bits in 0..64u32 {
        for vhosts in ["a.test", "a.test,b.test"] {
            let bit = |i: u32| bits & (1 << i) != 0;
            let r = Routing {
                path: bit(0),
                auth: bit(1),
                redirect: bit(2),
                map: bit(3),
                map_http_done: bit(4),
                map_https_done: bit(5),
                ..routing(vhosts)
            };
            for step in plan(&r) {
                if let Step::Emit(acl) = step {
                    let names: Vec<&str> = acl.vars.iter().map(|v| v.name()).collect();
                    let text = templates.get(acl.template);
                    engine
                        .check(text, &names)
                        .unwrap_or_else(|e| panic!("{}: {e}", acl.template));
                    emitted.insert(acl.template);
                }
            }
        }
    }
    // Every vhost ACL template of marathon-lb is reachable.
    assert_eq!(emitted.len(), 21, "{emitted:?}");
}
