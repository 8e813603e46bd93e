//! When `haproxy -c` rejects the whole config, find the apps that break it by
//! bisection, leave them out, and say why.
//!
//! marathon-lb re-validated after adding apps one at a time (N `haproxy -c`
//! runs, O(N²) generation). Here the apps, sorted by id (so the result does
//! not depend on Marathon's order), are split in halves: a half that
//! validates on top of the apps already accepted is accepted whole, a half
//! that does not is split again, down to single apps, which are dropped with
//! HAProxy's message. For k bad apps among N that is about 2·k·log₂N
//! validations. An app that only conflicts with another (two apps binding
//! the same port) is caught too: the later one is dropped.

use std::collections::BTreeMap;

use mlb_core::render::Renderer;
use mlb_core::{RenderSettings, Rendered};
use mlb_model::Service;

/// An app left out because HAProxy rejected the config with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The app.
    pub app_id: String,
    /// HAProxy's message for the config with this app.
    pub reason: String,
}

/// The result of a cleanup.
#[derive(Debug)]
pub struct Cleaned {
    /// The config without the dropped apps (validated).
    pub rendered: Rendered,
    /// What was left out and why.
    pub dropped: Vec<Dropped>,
    /// How many validations ran.
    pub validations: usize,
    /// HAProxy's message when the config is invalid even without any app:
    /// the problem is global (HEAD, a global template, a missing
    /// certificate), no app is to blame and none is dropped.
    pub global: Option<String>,
}

struct Search<'a, F> {
    renderer: &'a mut Renderer,
    settings: &'a RenderSettings,
    check: F,
    validations: usize,
}

impl<F: FnMut(&Rendered) -> Result<(), String>> Search<'_, F> {
    fn test(&mut self, apps: &[&[Service]]) -> (Rendered, Result<(), String>) {
        let services: Vec<Service> = apps.iter().flat_map(|s| s.iter().cloned()).collect();
        let rendered = self.renderer.render(&services, self.settings);
        self.validations += 1;
        // A global template that fails now (a filter plugin backed off, say)
        // makes this config unusable whatever apps it holds.
        let result = match &rendered.fatal {
            Some(fatal) => Err(fatal.clone()),
            None => (self.check)(&rendered),
        };
        (rendered, result)
    }

    /// Split `candidates` on top of `accepted` (which validates); returns the
    /// dropped apps and grows `accepted`.
    fn bisect<'s>(
        &mut self,
        accepted: &mut Vec<&'s [Service]>,
        candidates: &[(&'s str, &'s [Service])],
        dropped: &mut Vec<Dropped>,
    ) {
        let mut trial = accepted.clone();
        trial.extend(candidates.iter().map(|(_, s)| *s));
        match self.test(&trial).1 {
            Ok(()) => *accepted = trial,
            Err(reason) if candidates.len() == 1 => dropped.push(Dropped {
                app_id: candidates[0].0.to_owned(),
                reason,
            }),
            Err(_) => {
                let (left, right) = candidates.split_at(candidates.len() / 2);
                self.bisect(accepted, left, dropped);
                self.bisect(accepted, right, dropped);
            }
        }
    }
}

/// Find and leave out the apps that make `check` fail. `check` validates a
/// rendered config (in production: `haproxy -c` on temp files).
pub fn drop_invalid_apps(
    services: &[Service],
    renderer: &mut Renderer,
    settings: &RenderSettings,
    check: impl FnMut(&Rendered) -> Result<(), String>,
) -> Cleaned {
    let mut by_app: BTreeMap<&str, Vec<Service>> = BTreeMap::new();
    for s in services {
        by_app.entry(&s.app_id).or_default().push(s.clone());
    }
    let apps: Vec<(&str, &[Service])> = by_app.iter().map(|(id, s)| (*id, s.as_slice())).collect();
    let mut search = Search {
        renderer,
        settings,
        check,
        validations: 0,
    };
    let mut accepted = Vec::new();
    let mut dropped = Vec::new();
    // The config without any app must validate, or no subset will.
    let (empty, base) = search.test(&[]);
    if let Err(reason) = base {
        return Cleaned {
            rendered: empty,
            dropped: Vec::new(),
            validations: search.validations,
            global: Some(reason),
        };
    }
    search.bisect(&mut accepted, &apps, &mut dropped);
    let (rendered, _) = search.test(&accepted);
    Cleaned {
        rendered,
        dropped,
        validations: search.validations,
        global: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlb_core::Templates;
    use mlb_model::Server;

    fn service(app: &str, port: i64, balance: &str) -> Service {
        Service {
            app_id: app.into(),
            backend: format!("{}_{port}", &app[1..]),
            service_port: port,
            mode: "tcp".into(),
            balance: balance.into(),
            bind_addr: "*".into(),
            servers: vec![Server {
                host: "10.0.0.1".into(),
                ip: "10.0.0.1".into(),
                port: 31000,
                name: "10_0_0_1_31000".into(),
                id: 1,
                ..Server::default()
            }],
            ..Service::default()
        }
    }

    /// A stand-in validator: `balance bogus` is invalid, and so is a port
    /// bound twice.
    fn check(r: &Rendered) -> Result<(), String> {
        if r.config.contains("balance bogus") {
            return Err("unknown balance 'bogus'".into());
        }
        let binds: Vec<&str> = r
            .config
            .lines()
            .filter(|l| l.starts_with("  bind *:"))
            .collect();
        let unique: std::collections::HashSet<_> = binds.iter().collect();
        if unique.len() != binds.len() {
            return Err("port bound twice".into());
        }
        Ok(())
    }

    #[test]
    fn finds_bad_and_conflicting_apps_with_few_validations() {
        let mut services: Vec<Service> = (0..64)
            .map(|i| service(&format!("/app{i:02}"), 10000 + i, "roundrobin"))
            .collect();
        services[17] = service("/app17", 10017, "bogus");
        services[40] = service("/app40", 10003, "roundrobin"); // same port as /app03
        let mut renderer = Renderer::new(Templates::defaults());
        let cleaned =
            drop_invalid_apps(&services, &mut renderer, &RenderSettings::default(), check);
        let dropped: Vec<_> = cleaned.dropped.iter().map(|d| d.app_id.as_str()).collect();
        assert_eq!(dropped, vec!["/app17", "/app40"]);
        assert_eq!(cleaned.dropped[0].reason, "unknown balance 'bogus'");
        assert!(check(&cleaned.rendered).is_ok());
        assert_eq!(cleaned.rendered.backends.len(), 62);
        // 2 bad apps among 64: far fewer than 64 validations.
        assert!(
            cleaned.validations <= 2 + 2 * 2 * 6,
            "{} validations",
            cleaned.validations
        );
    }

    #[test]
    fn a_global_failure_blames_no_app() {
        let services: Vec<Service> = (0..4)
            .map(|i| service(&format!("/a{i}"), 10000 + i, "roundrobin"))
            .collect();
        let mut r = Renderer::new(Templates::defaults());
        let cleaned = drop_invalid_apps(&services, &mut r, &RenderSettings::default(), |_| {
            Err("unable to stat SSL certificate from file '/etc/ssl/cert.pem'".into())
        });
        assert!(cleaned.dropped.is_empty());
        assert_eq!(cleaned.validations, 1);
        assert!(cleaned.global.unwrap().contains("/etc/ssl/cert.pem"));
    }

    #[test]
    fn result_does_not_depend_on_input_order() {
        let mut services: Vec<Service> = (0..20)
            .map(|i| service(&format!("/a{i:02}"), 10000 + i, "roundrobin"))
            .collect();
        services[5].balance = "bogus".into();
        let mut reversed = services.clone();
        reversed.reverse();
        let mut r = Renderer::new(Templates::defaults());
        let a = drop_invalid_apps(&services, &mut r, &RenderSettings::default(), check);
        let b = drop_invalid_apps(&reversed, &mut r, &RenderSettings::default(), check);
        assert_eq!(a.dropped, b.dropped);
        assert_eq!(a.rendered, b.rendered);
    }
}
