//! Invariants marathon-lb only documents, checked over generated inputs.

use std::collections::HashSet;

use mlb_label_rules::{calculate_server_id, interpret};
use mlb_model::{App, InterpretOptions, Severity, Task};
use proptest::prelude::*;

proptest! {
    /// Server ids are unique within a backend, in 1..=32767, and stable: the
    /// same names in the same order give the same ids, and appending a server
    /// never changes the ids of the ones before it.
    #[test]
    fn server_ids_unique_in_range_and_stable(names in proptest::collection::vec("[a-z0-9_]{1,24}", 1..200)) {
        let mut taken = HashSet::new();
        let ids: Vec<u32> = names.iter().map(|n| calculate_server_id(n, &mut taken)).collect();
        let unique: HashSet<_> = ids.iter().collect();
        prop_assert_eq!(unique.len(), ids.len());
        prop_assert!(ids.iter().all(|id| (1..=32767).contains(id)));
        let mut again = HashSet::new();
        let prefix: Vec<u32> = names[..names.len() - 1].iter().map(|n| calculate_server_id(n, &mut again)).collect();
        prop_assert_eq!(&prefix[..], &ids[..names.len() - 1]);
    }

    /// A value with a control character in any label that is pasted into a
    /// config line rejects that service with a diagnostic naming the app and
    /// the label; nothing of the value reaches the services.
    #[test]
    fn control_characters_in_labels_reject_the_service(
        label in prop::sample::select(vec![
            "VHOST", "PATH", "BIND_OPTIONS", "BIND_ADDR", "SSL_CERT", "BALANCE", "AUTH", "MODE",
            "HTTP_BACKEND_PROXYPASS_PATH", "HTTP_BACKEND_REVPROXY_PATH", "HTTP_BACKEND_REDIR",
            "BACKEND_NETWORK_ALLOWED_ACL", "GROUP",
        ]),
        before in "[a-z./:-]{0,12}",
        control in prop::sample::select(vec!['\n', '\r', '\t', '\u{0}', '\u{b}', '\u{c}', '\u{1b}', '\u{7f}', '\u{85}']),
        after in "[ a-z{}#\"-]{0,20}",
    ) {
        let value = format!("{before}{control}{after}");
        let key = format!("HAPROXY_0_{label}");
        let app = App {
            id: "/evil".into(),
            labels: [("HAPROXY_GROUP", "external"), ("HAPROXY_0_VHOST", "evil.test")]
                .into_iter()
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .chain([(key.clone(), value)])
                .collect(),
            port_definitions: Some(vec![Some(10000)]),
            tasks: vec![Task {
                id: "t".into(),
                host: "10.0.0.1".into(),
                host_ip: Some("10.0.0.1".into()),
                ports: vec![31000],
                ..Task::default()
            }],
            ..App::default()
        };
        let out = interpret(&[app], &InterpretOptions { groups: vec!["*".into()], ..InterpretOptions::default() });
        prop_assert!(out.services.is_empty(), "service kept: {:?}", out.services);
        prop_assert!(out.diagnostics.iter().any(|d| d.severity == Severity::Error && d.app_id == "/evil" && d.label.as_deref() == Some(key.as_str())));
    }
}
