use super::*;

/// A config as the default templates render it (HEAD trimmed), with
/// `servers` in backend `web_10000` and `balance` its balance line.
fn config(balance: &str, servers: &[&str]) -> String {
    let mut text = String::from(
        "global\n  stats socket /var/run/haproxy/socket expose-fd listeners\n  server-state-file global\n\
         defaults\n  load-server-state-from-file global\n  retries                   3\n  timeout connect          3s\n\
         \nfrontend marathon_http_in\n  bind *:80\n  mode http\n  use_backend web_10000 if { hdr(host) -i web.example }\n\
         \nfrontend web_10000\n  bind *:10000\n  mode http\n  use_backend web_10000\n\
         \nbackend web_10000\n",
    );
    text.push_str(&format!(
        "  balance {balance}\n  mode http\n  option forwardfor\n"
    ));
    for s in servers {
        text.push_str(&format!("  server {s}\n"));
    }
    text.push_str("\nbackend other_10001\n  balance roundrobin\n  mode tcp\n  server 10_0_0_9_9 10.0.0.9:9 id 99\n");
    text
}

const A: &str = "10_0_0_1_31000 10.0.0.1:31000 id 1234";
const B: &str = "10_0_0_2_31001 10.0.0.2:31001 id 5678";
const B_CHECKED: &str = "10_0_0_2_31001 10.0.0.2:31001 id 5678 check inter 2s fall 3";

fn none(_: &str) -> Vec<&'static ServerLine> {
    Vec::new()
}

fn runtime(old: &str, new: &str) -> Plan {
    match decide(old, new, none) {
        Decision::Runtime(plan) => plan,
        other => panic!("expected a runtime plan, got {other:?}"),
    }
}

fn reload(old: &str, new: &str) -> ReloadReason {
    match decide(old, new, none) {
        Decision::Reload(reason) => reason,
        other => panic!("expected a reload, got {other:?}"),
    }
}

fn structure(section: &str) -> ReloadReason {
    ReloadReason::Structure {
        section: section.into(),
    }
}

/// The `pending` argument of [`decide`]: `server` drains in `web_10000`.
fn draining_in_web<'s>(server: &'s ServerLine) -> impl Fn(&str) -> Vec<&'s ServerLine> + Copy {
    move |b| {
        if b == "web_10000" {
            vec![server]
        } else {
            vec![]
        }
    }
}

fn names(servers: &[ServerLine]) -> Vec<&str> {
    servers.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn identical_text_is_unchanged() {
    let c = config("roundrobin", &[A]);
    assert_eq!(decide(&c, &c, none), Decision::Unchanged);
}

#[test]
fn one_server_added_and_one_removed() {
    let plan = runtime(
        &config("roundrobin", &[A]),
        &config("roundrobin", &[A, B_CHECKED]),
    );
    assert_eq!(plan.backends.len(), 1);
    let b = &plan.backends[0];
    assert_eq!(b.backend, "web_10000");
    assert_eq!(names(&b.add), ["10_0_0_2_31001"]);
    assert_eq!(
        b.add[0].options,
        ["id", "5678", "check", "inter", "2s", "fall", "3"]
    );
    assert!(b.remove.is_empty());
    assert_eq!(names(&b.expected), ["10_0_0_1_31000", "10_0_0_2_31001"]);
    // timeout connect 3s × (retries 3 + 1)
    assert_eq!(b.grace, Duration::from_secs(12));

    let plan = runtime(&config("roundrobin", &[A, B]), &config("roundrobin", &[B]));
    assert_eq!(names(&plan.backends[0].remove), ["10_0_0_1_31000"]);
    assert!(plan.backends[0].add.is_empty());
    // Scaled to zero: the backend stays, empty.
    let plan = runtime(&config("roundrobin", &[B]), &config("roundrobin", &[]));
    assert_eq!(names(&plan.backends[0].remove), ["10_0_0_2_31001"]);
}

#[test]
fn a_port_change_is_a_remove_and_an_add() {
    let moved = "10_0_0_1_31005 10.0.0.1:31005 id 777";
    let plan = runtime(&config("roundrobin", &[A]), &config("roundrobin", &[moved]));
    let b = &plan.backends[0];
    assert_eq!(
        (names(&b.remove), names(&b.add)),
        (vec!["10_0_0_1_31000"], vec!["10_0_0_1_31005"])
    );
}

#[test]
fn disabled_toggles_are_maintenance_changes() {
    let draining = format!("{A} disabled");
    let plan = runtime(
        &config("roundrobin", &[A, B]),
        &config("roundrobin", &[&draining, B]),
    );
    assert_eq!(plan.backends[0].disable, ["10_0_0_1_31000"]);
    let plan = runtime(
        &config("roundrobin", &[&draining, B]),
        &config("roundrobin", &[A, B]),
    );
    assert_eq!(plan.backends[0].enable, ["10_0_0_1_31000"]);
    // A new server in a draining state is added and left in maintenance.
    let plan = runtime(
        &config("roundrobin", &[B]),
        &config("roundrobin", &[&draining, B]),
    );
    assert!(plan.backends[0].add[0].disabled);
    assert!(
        !plan.backends[0].add[0]
            .options
            .iter()
            .any(|o| o == "disabled")
    );
}

#[test]
fn dynamic_algorithms_run_at_run_time() {
    for balance in ["roundrobin", "leastconn", "first", "random", "random(2)"] {
        runtime(&config(balance, &[A]), &config(balance, &[A, B]));
    }
    let consistent = |servers: &[&str]| {
        config("source", servers).replace(
            "option forwardfor",
            "option forwardfor\n  hash-type consistent",
        )
    };
    runtime(&consistent(&[A]), &consistent(&[A, B]));
}

#[test]
fn static_algorithms_reload() {
    for balance in [
        "static-rr",
        "source",
        "uri",
        "hdr(host)",
        "url_param userid",
    ] {
        let reason = reload(&config(balance, &[A]), &config(balance, &[A, B]));
        assert_eq!(reason.label(), "balance", "{balance}");
        assert_eq!(
            reason,
            ReloadReason::Balance {
                backend: "web_10000".into(),
                algorithm: balance.into()
            }
        );
    }
}

#[test]
fn the_defaults_balance_applies_without_a_backend_line() {
    let strip = |c: String| c.replace("  balance roundrobin\n  mode http", "  mode http");
    let old = strip(config("roundrobin", &[A]));
    let new = strip(config("roundrobin", &[A, B]));
    runtime(&old, &new);
    let in_defaults = |c: &str| c.replace("defaults\n", "defaults\n  balance static-rr\n");
    assert_eq!(
        reload(&in_defaults(&old), &in_defaults(&new)).label(),
        "balance"
    );
}

#[test]
fn sticky_servers_reload() {
    // HAPROXY_{n}_STICKY as the default templates render it.
    let sticky = |servers: &[&str]| {
        config("roundrobin", servers).replace(
            "option forwardfor",
            "option forwardfor\n  cookie mesosphere_server_id insert indirect nocache",
        )
    };
    let a = "10_0_0_1_31000 10.0.0.1:31000 id 1234 check cookie e09ea81c40";
    let b = "10_0_0_2_31001 10.0.0.2:31001 id 5678 check cookie 6c74d15485";
    assert_eq!(reload(&sticky(&[a]), &sticky(&[a, b])).label(), "cookie");
    assert_eq!(reload(&sticky(&[a, b]), &sticky(&[b])).label(), "cookie");
}

#[test]
fn default_server_reloads() {
    let old = config("roundrobin", &[A]);
    let new = config("roundrobin", &[A, B]);
    let in_defaults = |c: &str| c.replace("defaults\n", "defaults\n  default-server inter 3s\n");
    assert_eq!(
        reload(&in_defaults(&old), &in_defaults(&new)).label(),
        "default_server"
    );
    let in_backend = |c: &str| {
        c.replace(
            "  mode http\n  option",
            "  mode http\n  default-server maxconn 9\n  option",
        )
    };
    assert_eq!(
        reload(&in_backend(&old), &in_backend(&new)).label(),
        "default_server"
    );
}

#[test]
fn an_id_collision_pair_reloads() {
    // marathon-lb's ids: sha256(name) % 32767, collisions chained in name
    // order. Adding 10_0_0_1_31021 takes 9734 from 10_0_0_3_31060.
    let before = ["10_0_0_3_31060 10.0.0.3:31060 id 9734"];
    let after = [
        "10_0_0_1_31021 10.0.0.1:31021 id 9734",
        "10_0_0_3_31060 10.0.0.3:31060 id 31325",
    ];
    let reason = reload(
        &config("roundrobin", &before),
        &config("roundrobin", &after),
    );
    assert_eq!(
        reason,
        ReloadReason::ServerId {
            backend: "web_10000".into(),
            server: "10_0_0_3_31060".into()
        }
    );
    assert_eq!(
        reload(
            &config("roundrobin", &after),
            &config("roundrobin", &before)
        )
        .label(),
        "server_id"
    );
}

#[test]
fn a_new_id_held_by_a_draining_server_reloads() {
    // A leaves (drained, not deleted yet: its id stays taken), C comes
    // with A's id.
    let c = "10_0_0_7_31007 10.0.0.7:31007 id 1234";
    let reason = reload(
        &config("roundrobin", &[A, B]),
        &config("roundrobin", &[B, c]),
    );
    assert_eq!(
        reason,
        ReloadReason::IdInUse {
            backend: "web_10000".into(),
            id: 1234
        }
    );
    let pending = ServerLine::parse(&format!("server {A}")).unwrap();
    let pending_a = draining_in_web(&pending);
    assert_eq!(
        decide(
            &config("roundrobin", &[B]),
            &config("roundrobin", &[B, c]),
            pending_a
        ),
        Decision::Reload(ReloadReason::IdInUse {
            backend: "web_10000".into(),
            id: 1234
        })
    );
}

#[test]
fn a_server_back_while_draining_is_revived() {
    let pending = ServerLine::parse(&format!("server {A}")).unwrap();
    let pending_a = draining_in_web(&pending);
    let Decision::Runtime(plan) = decide(
        &config("roundrobin", &[B]),
        &config("roundrobin", &[A, B]),
        pending_a,
    ) else {
        panic!("runtime expected");
    };
    assert_eq!(names(&plan.backends[0].revive), ["10_0_0_1_31000"]);
    assert!(plan.backends[0].add.is_empty());
    // Same name, other options: the runtime twin differs.
    let other = format!("{A} check");
    assert_eq!(
        decide(
            &config("roundrobin", &[B]),
            &config("roundrobin", &[&other, B]),
            pending_a
        ),
        Decision::Reload(ReloadReason::ServerChanged {
            backend: "web_10000".into(),
            server: "10_0_0_1_31000".into()
        })
    );
}

#[test]
fn changes_outside_server_lines_reload() {
    let old = config("roundrobin", &[A]);
    // A backend option (a label changed).
    let new = old.replace(
        "option forwardfor",
        "option forwardfor\n  option http-keep-alive",
    );
    assert_eq!(
        reload(&old, &new),
        ReloadReason::Backend {
            backend: "web_10000".into()
        }
    );
    // A vhost ACL.
    let new = old.replace("web.example", "www.example");
    assert_eq!(reload(&old, &new), structure("frontend marathon_http_in"));
    // A new backend.
    let new = format!("{old}backend new_10002\n  balance roundrobin\n");
    assert_eq!(reload(&old, &new).label(), "structure");
    // A removed backend.
    let new = old.split("backend other_10001").next().unwrap().to_owned();
    assert_eq!(reload(&old, &new), structure("backend other_10001"));
    // Global.
    let new = old.replace("server-state-file global", "server-state-file other");
    assert_eq!(reload(&old, &new), structure("global"));
    // An option of a server that stays.
    let new = config("roundrobin", &[&format!("{A} check")]);
    assert_eq!(reload(&old, &new).label(), "server_options");
}

#[test]
fn server_lines_add_server_cannot_take_reload() {
    let old = config("roundrobin", &[A]);
    let named = "web_1 web1.example:80 id 3";
    assert_eq!(
        reload(&old, &config("roundrobin", &[A, named])).label(),
        "server_address"
    );
    for (line, keyword) in [
        ("s 10.0.0.5:80 id 3 track web_10000/x", "track"),
        ("s 10.0.0.5:80 id 3 resolvers dns", "resolvers"),
        ("s 10.0.0.5:80 id 3 init-addr none", "init-addr"),
        ("s 10.0.0.5:80 id 3 redir http://x", "redir"),
        ("s 10.0.0.5:80 id 3 inter", "inter"),
    ] {
        assert_eq!(
            reload(&old, &config("roundrobin", &[A, line])),
            ReloadReason::Keyword {
                backend: "web_10000".into(),
                server: "s".into(),
                keyword: keyword.into()
            }
        );
    }
}

#[test]
fn too_many_operations_reload() {
    let lines: Vec<String> = (0..2000)
        .map(|i| format!("s{i} 10.1.{}.{}:80 id {}", i / 250, i % 250, i + 1))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(
        reload(&config("roundrobin", &[]), &config("roundrobin", &refs)).label(),
        "too_many"
    );
    runtime(
        &config("roundrobin", &[]),
        &config("roundrobin", &refs[..100]),
    );
}

#[test]
fn texts_that_differ_only_where_lines_do_not_look_are_unchanged() {
    // Sections are compared as texts first; texts that differ only in line
    // endings or a header's trailing blanks still make the same lines, and
    // the decision is the line-by-line one.
    let old = config("roundrobin", &[A, B]);
    let crlf = old.replace("id 5678\n", "id 5678\r\n");
    let blank = old.replace("backend other_10001\n", "backend other_10001 \t\n");
    for new in [crlf, blank] {
        assert_ne!(old, new);
        assert_eq!(decide(&old, &new, none), Decision::Unchanged, "{new:?}");
    }
    // A change in the last section still counts.
    let tail = old.replace("id 99\n", "id 99\n  timeout server 1s\n");
    assert_eq!(
        reload(&old, &tail),
        ReloadReason::Backend {
            backend: "other_10001".into()
        }
    );
}

#[test]
fn the_changed_span_decides_like_the_whole_texts() {
    // Random line edits of a config with a second `defaults`, comments,
    // CRLF and blank lines; the plan from the changed sections alone must
    // be the plan from every section.
    let base: Vec<String> = {
        let mut text = config("roundrobin", &[A, B]);
        text.push_str("defaults\n  balance source\n  timeout connect 1s\r\n# note\n\n");
        text.push_str("backend late_10002\n  mode http\n  server 10_0_0_7_7 10.0.0.7:7 id 7\n");
        text.push_str("backend last_10003\n  balance first\n  server 10_0_0_8_8 10.0.0.8:8 id 8");
        text.split_inclusive('\n').map(str::to_owned).collect()
    };
    let pool = [
        "  server 10_0_0_5_5 10.0.0.5:5 id 55\n",
        "  server 10_0_0_6_6 10.0.0.6:6 id 66 check\n",
        "  server 10_0_0_5_5 10.0.0.5:5 id 56\n",
        "  option httplog\n",
        "backend extra_1\n",
        "defaults\n",
        "defaults x\n",
        "  balance static-rr\n",
        "  hash-type consistent\n",
        "# comment\n",
        "\n",
        "\r\n",
        "\tserver t 10.0.0.9:9 id 9\n",
        "frontend web_10000\n",
        "backend web_10000 \n",
        "  default-server inter 1s\n",
    ];
    let mut seed = 42u64;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n
    };
    let mut runtime = 0;
    for _ in 0..3000 {
        let mut old = base.clone();
        for _ in 0..next(3) {
            let at = next(old.len() + 1);
            old.insert(at, pool[next(pool.len())].to_owned());
        }
        let mut new = old.clone();
        for _ in 0..1 + next(3) {
            let at = next(new.len());
            match next(3) {
                0 => {
                    new.remove(at);
                }
                // Server lines half of the time.
                1 => new.insert(at, pool[next(pool.len()) % (2 + 14 * next(2))].to_owned()),
                _ => new[at] = pool[next(pool.len()) % (2 + 14 * next(2))].to_owned(),
            }
            if new.is_empty() {
                new.push("\n".to_owned());
            }
        }
        let (old, new) = (old.concat(), new.concat());
        let narrowed = plan(&old, &new, none);
        assert_eq!(narrowed, plan_whole(&old, &new, none), "{old:?}\n{new:?}");
        runtime += usize::from(narrowed.is_ok_and(|p| !p.backends.is_empty()));
    }
    assert!(
        runtime > 100,
        "only {runtime} runtime plans: the edits are too rough"
    );
}
