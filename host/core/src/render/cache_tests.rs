//! A cached renderer gives exactly what a fresh one gives, after every step
//! of a random sequence of changes to the services and settings.

use mlb_model::{Auth, Server, Service};
use proptest::prelude::*;

use super::*;

const APPS: &[&str] = &["/a", "/b", "/c/d", "/e"];
const VHOSTS: &[&str] = &["a.test", "b.test", "a.test,c.test"];

fn service(app: usize, port: i64, vhost: Option<usize>, flags: u8, servers: u8) -> Service {
    let app_id = APPS[app % APPS.len()];
    Service {
        app_id: app_id.into(),
        backend: format!("{}_{port}", app_id[1..].replace('/', "_")),
        service_port: port,
        mode: if vhost.is_some() || flags & 1 != 0 {
            "http"
        } else {
            "tcp"
        }
        .into(),
        balance: "roundrobin".into(),
        hostname: vhost.map(|v| VHOSTS[v % VHOSTS.len()].to_owned()),
        path: (flags & 2 != 0).then(|| "/api".to_owned()),
        auth: (flags & 4 != 0).then(|| Auth {
            realm: "r".into(),
            user: "u".into(),
            password: "p".into(),
        }),
        redirect_to_https: flags & 8 != 0,
        sticky: flags & 16 != 0,
        backend_weight: i64::from(flags >> 6),
        bind_addr: "*".into(),
        servers: (0..servers)
            .map(|i| Server {
                host: "127.0.0.1".into(),
                ip: "127.0.0.1".into(),
                port: 31000 + i64::from(i),
                name: format!("127_0_0_1_{}", 31000 + i64::from(i)),
                id: u32::from(i) + 1,
                ..Server::default()
            })
            .collect(),
        ..Service::default()
    }
}

fn any_service() -> impl Strategy<Value = Service> {
    (
        0..4usize,
        10000..10004i64,
        proptest::option::of(0..3usize),
        any::<u8>(),
        0..3u8,
    )
        .prop_map(|(a, p, v, f, s)| service(a, p, v, f, s))
}

/// One change between two reconciles.
#[derive(Debug, Clone)]
enum Step {
    Add(Service),
    Remove(usize),
    /// A task came or went: the servers of one service change.
    Servers(usize, u8),
    Replace(usize, Service),
    /// `--haproxy-map`, `--group-https-by-vhost` flipped (a restart).
    Settings(bool, bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => any_service().prop_map(Step::Add),
        1 => (0..16usize).prop_map(Step::Remove),
        4 => (0..16usize, 0..4u8).prop_map(|(i, n)| Step::Servers(i, n)),
        1 => (0..16usize, any_service()).prop_map(|(i, s)| Step::Replace(i, s)),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(m, g)| Step::Settings(m, g)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn cached_renders_equal_full_renders(
        start in proptest::collection::vec(any_service(), 0..8),
        steps in proptest::collection::vec(step(), 1..20),
        map in any::<bool>(),
        grouped in any::<bool>(),
    ) {
        let mut settings = RenderSettings {
            haproxy_map: map,
            group_https_by_vhost: grouped,
            ..RenderSettings::default()
        };
        let mut cached = Renderer::new(Templates::defaults());
        cached.enable_cache();
        let mut services = start;
        let mut reused = 0;
        for step in steps {
            match step {
                Step::Add(s) => services.push(s),
                Step::Remove(i) if !services.is_empty() => {
                    services.remove(i % services.len());
                }
                Step::Servers(i, n) if !services.is_empty() => {
                    let len = services.len();
                    let s = &mut services[i % len];
                    *s = service(
                        APPS.iter().position(|a| *a == s.app_id).unwrap_or(0),
                        s.service_port,
                        s.hostname.as_ref().and_then(|h| VHOSTS.iter().position(|v| v == h)),
                        u8::from(s.mode == "http") | u8::from(s.path.is_some()) << 1
                            | u8::from(s.auth.is_some()) << 2 | u8::from(s.redirect_to_https) << 3
                            | u8::from(s.sticky) << 4 | (s.backend_weight as u8) << 6,
                        n,
                    );
                }
                Step::Replace(i, new) if !services.is_empty() => {
                    let len = services.len();
                    services[i % len] = new;
                }
                Step::Settings(m, g) => {
                    settings.haproxy_map = m;
                    settings.group_https_by_vhost = g;
                }
                _ => {}
            }
            let full = Renderer::new(Templates::defaults()).render(&services, &settings);
            let incremental = cached.render(&services, &settings);
            prop_assert_eq!(&incremental, &full);
            reused += cached.cache_stats().expect("caching").0;
        }
        // How much was reused (printed with --nocapture).
        eprintln!("services reused: {reused}");
    }
}

#[test]
fn filters_turn_caching_off() {
    #[derive(Debug)]
    struct Upper;
    impl crate::engine::TemplateFilter for Upper {
        fn apply(&self, _: &str, value: &str, _: &[String]) -> Result<String, String> {
            Ok(value.to_uppercase())
        }
    }
    let mut r = Renderer::new(Templates::defaults());
    r.enable_cache();
    let services = [service(0, 10000, Some(0), 0, 1)];
    r.render(&services, &RenderSettings::default());
    r.render(&services, &RenderSettings::default());
    assert_eq!(r.cache_stats(), Some((1, 0)));
    // The global part alone (the host check) neither uses nor ages entries.
    for _ in 0..10 {
        r.render(&[], &RenderSettings::default());
    }
    r.render(&services, &RenderSettings::default());
    assert_eq!(r.cache_stats(), Some((1, 0)));
    r.add_filter("upper", std::sync::Arc::new(Upper));
    r.render(&services, &RenderSettings::default());
    assert_eq!(r.cache_stats(), None);
}

/// `n` apps as the synthetic benchmark shapes them: a vhost each, three
/// loopback tasks.
fn apps(n: i64) -> Vec<mlb_model::App> {
    (0..n)
        .map(|i| mlb_model::App {
            id: format!("/team{}/app{i}", i % 50),
            labels: vec![
                ("HAPROXY_GROUP".into(), "external".into()),
                ("HAPROXY_0_VHOST".into(), format!("app{i}.example.com")),
            ],
            port_definitions: Some(vec![Some(10000 + i)]),
            network_modes: vec![Some("host".into())],
            tasks: (0..3)
                .map(|t| mlb_model::Task {
                    id: format!("app{i}.{t}"),
                    host: format!("127.0.{}.{}", t, 1 + i % 250),
                    host_ip: Some(format!("127.0.{}.{}", t, 1 + i % 250)),
                    state: Some("TASK_RUNNING".into()),
                    ports: vec![31000 + i % 30000],
                    ..mlb_model::Task::default()
                })
                .collect(),
            ..mlb_model::App::default()
        })
        .collect()
}

/// Printed figures, not assertions on time:
/// `cargo test -p mlb-core --release --lib render_figures -- --ignored --nocapture`.
#[test]
#[ignore = "prints timings; run on demand in release"]
fn render_figures() {
    use std::time::Instant;
    let options = mlb_model::InterpretOptions {
        groups: vec!["external".into()],
        ..Default::default()
    };
    for n in [5000, 10000] {
        let mut apps = apps(n);
        let services = mlb_label_rules::interpret(&apps, &options).services;
        let settings = RenderSettings::default();
        let mut full_ms = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let _ = Renderer::new(Templates::defaults()).render(&services, &settings);
            full_ms = full_ms.min(t.elapsed().as_secs_f64() * 1e3);
        }
        let mut cached = Renderer::new(Templates::defaults());
        cached.enable_cache();
        let first = Instant::now();
        cached.render(&services, &settings);
        let first_ms = first.elapsed().as_secs_f64() * 1e3;
        let mut step_ms = f64::MAX;
        for k in 0..5 {
            // One task added to one app: one service changes.
            let mut task = apps[k].tasks[0].clone();
            task.id.push_str("-new");
            task.ports = vec![40000 + k as i64];
            apps[k].tasks.push(task);
            let services = mlb_label_rules::interpret(&apps, &options).services;
            let t = Instant::now();
            let out = cached.render(&services, &settings);
            step_ms = step_ms.min(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(cached.cache_stats(), Some((services.len() - 1, 1)));
            assert!(!out.config.is_empty());
        }
        println!(
            "{n} apps, {} services: full render {full_ms:.1} ms; cached render \
             after one task change {step_ms:.1} ms (first, filling the cache: {first_ms:.1} ms)",
            services.len()
        );
    }
}

#[test]
fn entries_unused_for_a_while_are_dropped() {
    let mut r = Renderer::new(Templates::defaults());
    r.enable_cache();
    let settings = RenderSettings::default();
    let a = [service(0, 10000, Some(0), 0, 1)];
    let b = [service(1, 10001, None, 0, 1)];
    r.render(&a, &settings);
    for _ in 0..super::cache::KEEP - 1 {
        r.render(&b, &settings);
    }
    r.render(&a, &settings);
    assert_eq!(r.cache_stats(), Some((1, 0)), "kept while recently used");
    for _ in 0..super::cache::KEEP {
        r.render(&b, &settings);
    }
    r.render(&a, &settings);
    assert_eq!(
        r.cache_stats(),
        Some((0, 1)),
        "dropped after KEEP renders without it"
    );
}

/// Services for the render-ahead test: repeated app ids, vhosts, map
/// claims, and some services whose label template fails.
fn many_services(seeds: &[(usize, i64, Option<usize>, u8, u8)]) -> Vec<Service> {
    seeds
        .iter()
        .enumerate()
        .map(|(i, &(a, p, v, f, s))| {
            let mut s = service(a + i % 7, p + i as i64, v, f, s);
            s.app_id = format!("{}{}", s.app_id, i % 5);
            s.backend = format!("b{i}_{}", s.service_port);
            if f % 31 == 0 {
                s.templates = vec![("BACKEND_HEAD".into(), "\nbackend {nope}\n".into())];
            }
            s
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Rendering the later half on a second thread (from the shared state
    /// the first half is expected to leave, re-rendering where that guess
    /// was wrong) gives exactly what one thread gives, in every mode.
    #[test]
    fn a_render_ahead_on_a_second_thread_equals_one_thread(
        seeds in proptest::collection::vec(
            (0..4usize, 10000..10004i64, proptest::option::of(0..3usize), any::<u8>(), 0..3u8),
            2..40,
        ),
        map in any::<bool>(),
        grouped in any::<bool>(),
        bind in any::<bool>(),
    ) {
        let services = many_services(&seeds);
        let settings = RenderSettings {
            haproxy_map: map,
            group_https_by_vhost: grouped,
            bind_http_https: bind,
            ..RenderSettings::default()
        };
        let mut one = Renderer::new(Templates::defaults());
        one.ahead_from = usize::MAX;
        let mut two = Renderer::new(Templates::defaults());
        two.ahead_from = 2;
        prop_assert_eq!(two.render(&services, &settings), one.render(&services, &settings));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A service's changed servers spliced into the last render give what a
    /// full render of the changed services gives; a change of its routing
    /// (its vhost) is declined, and the caller's full render follows.
    #[test]
    fn a_spliced_render_equals_a_full_render(
        seeds in proptest::collection::vec(
            (0..4usize, 10000..10004i64, proptest::option::of(0..3usize), any::<u8>(), 0..3u8),
            1..12,
        ),
        changes in proptest::collection::vec((0..12usize, 0..4u8, any::<bool>()), 1..10),
        map in any::<bool>(),
        grouped in any::<bool>(),
        options in any::<bool>(),
    ) {
        let mut services = many_services(&seeds);
        let settings = RenderSettings {
            haproxy_map: map,
            group_https_by_vhost: grouped,
            http_frontend_options: if options {
                vec!["idle-close-on-response".into()]
            } else {
                Vec::new()
            },
            ..RenderSettings::default()
        };
        let mut r = Renderer::new(Templates::defaults());
        r.enable_cache();
        r.render(&services, &settings);
        for (i, servers, reroute) in changes {
            let i = i % services.len();
            let old = services[i].clone();
            let mut new = old.clone();
            new.servers = service(0, 10000, None, 0, servers).servers;
            if reroute {
                new.hostname = Some("moved.test".into());
            }
            let spliced = r.rerender(&[(&old, &new)], &settings);
            services[i] = new;
            let full = Renderer::new(Templates::defaults()).render(&services, &settings);
            match spliced {
                Some(spliced) => {
                    prop_assert!(!reroute || old.hostname.as_deref() == Some("moved.test") || old.mode != "http");
                    prop_assert_eq!(&spliced, &full);
                    // Its text is the next splice's buffer, as the
                    // controller hands back the text HAProxy ran before.
                    r.recycle(spliced.config);
                }
                None => {
                    prop_assert_eq!(r.render(&services, &settings), full);
                }
            }
        }
    }
}

/// Splicing replaces the service's cache entry instead of adding one: a
/// long run of membership changes between full renders keeps the cache at
/// one entry per service.
#[test]
fn splicing_does_not_grow_the_cache() {
    let mut r = Renderer::new(Templates::defaults());
    r.enable_cache();
    let settings = RenderSettings::default();
    let mut current = service(0, 10000, Some(0), 0, 1);
    r.render(std::slice::from_ref(&current), &settings);
    for k in 0..100u8 {
        let mut next = current.clone();
        next.servers = service(0, 10000, Some(0), 0, 1 + k % 2).servers;
        assert!(r.rerender(&[(&current, &next)], &settings).is_some());
        current = next;
    }
    assert_eq!(r.cache.as_ref().map(|c| c.len()), Some(1));
}

/// A text handed back is the buffer of the next spliced text.
#[test]
fn a_recycled_text_is_the_next_buffer() {
    let mut r = Renderer::new(Templates::defaults());
    r.enable_cache();
    let settings = RenderSettings::default();
    let one = service(0, 10000, Some(0), 0, 1);
    let mut two = one.clone();
    two.servers = service(0, 10000, Some(0), 0, 2).servers;
    let first = r.render(std::slice::from_ref(&one), &settings);
    let mut buffer = String::with_capacity(2 * first.config.len());
    buffer.push_str(&first.config);
    let at = buffer.as_ptr();
    r.recycle(buffer);
    let spliced = r.rerender(&[(&one, &two)], &settings).expect("spliced");
    assert_eq!(spliced.config.as_ptr(), at);
    assert_eq!(
        spliced,
        Renderer::new(Templates::defaults()).render(&[two], &settings)
    );
}
