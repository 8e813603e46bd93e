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
//! the same port) is caught too: the later one is dropped, and the reason
//! names the app it conflicts with. But when one app makes two or more
//! later apps fail that are valid together without it, that one app broke
//! the config and only it is dropped (a few more validations per dropped
//! app: one alone, log₂N to find the app it conflicts with).

use std::collections::{BTreeMap, HashMap};

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

/// An app and its services.
type Entry<'s> = (&'s str, &'s [Service]);

struct Search<'a, F> {
    renderer: &'a mut Renderer,
    settings: &'a RenderSettings,
    check: F,
    validations: usize,
}

/// The search so far.
#[derive(Default)]
struct State<'s> {
    /// Apps in the config (it validates with all of them).
    accepted: Vec<Entry<'s>>,
    dropped: Vec<Dropped>,
    /// Apps dropped because they fail only together with an accepted app,
    /// by that app.
    victims: HashMap<&'s str, Vec<Entry<'s>>>,
}

impl<F: FnMut(&Rendered) -> Result<(), String>> Search<'_, F> {
    fn test(&mut self, apps: &[Entry<'_>]) -> (Rendered, Result<(), String>) {
        let services: Vec<Service> = apps.iter().flat_map(|e| e.1.iter().cloned()).collect();
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

    /// Split `candidates` on top of the accepted apps (which validate).
    fn bisect<'s>(&mut self, state: &mut State<'s>, candidates: &[Entry<'s>]) {
        let mut trial = state.accepted.clone();
        trial.extend_from_slice(candidates);
        match self.test(&trial).1 {
            Ok(()) => state.accepted = trial,
            Err(reason) if candidates.len() == 1 => self.blame(state, candidates[0], reason),
            Err(_) => {
                let (left, right) = candidates.split_at(candidates.len() / 2);
                self.bisect(state, left);
                self.bisect(state, right);
            }
        }
    }

    /// `app` fails on top of the accepted apps: drop it, unless it is fine
    /// on its own and the accepted app it fails with breaks other apps too,
    /// which are fine together without it: then that app broke the config
    /// (a section it opened swallowed the lines after it, say) and it is
    /// the one dropped.
    fn blame<'s>(&mut self, state: &mut State<'s>, app: Entry<'s>, reason: String) {
        if state.accepted.is_empty() || self.test(&[app]).1.is_err() {
            state.dropped.push(Dropped {
                app_id: app.0.to_owned(),
                reason,
            });
            return;
        }
        // The shortest prefix of the accepted apps that fails with `app`
        // ends with the app it conflicts with.
        let (mut passes, mut fails) = (0, state.accepted.len());
        while fails - passes > 1 {
            let mid = (passes + fails) / 2;
            let mut trial = state.accepted[..mid].to_vec();
            trial.push(app);
            if self.test(&trial).1.is_ok() {
                passes = mid;
            } else {
                fails = mid;
            }
        }
        let culprit = state.accepted[fails - 1];
        let victims = state.victims.entry(culprit.0).or_default();
        victims.push(app);
        if victims.len() >= 2 {
            let victims = victims.clone();
            let mut trial: Vec<Entry<'s>> = state
                .accepted
                .iter()
                .filter(|e| e.0 != culprit.0)
                .copied()
                .collect();
            trial.extend_from_slice(&victims);
            if self.test(&trial).1.is_ok() {
                let ids: Vec<&str> = victims.iter().map(|v| v.0).collect();
                state.dropped.retain(|d| !ids.contains(&d.app_id.as_str()));
                state.dropped.push(Dropped {
                    app_id: culprit.0.to_owned(),
                    reason: format!(
                        "it breaks the config for apps {} (valid without it): {reason}",
                        ids.join(", ")
                    ),
                });
                state.accepted = trial;
                state.victims.remove(culprit.0);
                return;
            }
        }
        state.dropped.push(Dropped {
            app_id: app.0.to_owned(),
            reason: format!("conflicts with app {}: {reason}", culprit.0),
        });
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
    let apps: Vec<Entry<'_>> = by_app.iter().map(|(id, s)| (*id, s.as_slice())).collect();
    let mut search = Search {
        renderer,
        settings,
        check,
        validations: 0,
    };
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
    let mut state = State::default();
    search.bisect(&mut state, &apps);
    let (rendered, _) = search.test(&state.accepted);
    Cleaned {
        rendered,
        dropped: state.dropped,
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
        assert_eq!(
            cleaned.dropped[1].reason,
            "conflicts with app /app03: port bound twice"
        );
        // 2 bad apps among 64: far fewer than 64 validations (the search,
        // then per dropped app one alone and log₂N to name the conflict).
        assert!(
            cleaned.validations <= 2 + 3 * 2 * 6,
            "{} validations",
            cleaned.validations
        );
    }

    /// A stand-in for an app whose lines swallow the lines after it (a
    /// section it opened): the config is invalid when any backend follows a
    /// `balance poison` line, yet the poisoning app alone is valid.
    fn poison_check(r: &Rendered) -> Result<(), String> {
        let mut poisoned = false;
        for line in r.config.lines() {
            if line == "  balance poison" {
                poisoned = true;
            } else if poisoned && line.starts_with("backend ") {
                return Err(format!("'{line}' is inside the poisoned section"));
            }
        }
        Ok(())
    }

    #[test]
    fn an_app_that_breaks_the_apps_after_it_is_the_one_dropped() {
        let mut services: Vec<Service> = (0..20)
            .map(|i| service(&format!("/a{i:02}"), 10000 + i, "roundrobin"))
            .collect();
        services[7].balance = "poison".into();
        let mut renderer = Renderer::new(Templates::defaults());
        let cleaned = drop_invalid_apps(
            &services,
            &mut renderer,
            &RenderSettings::default(),
            poison_check,
        );
        let dropped: Vec<_> = cleaned.dropped.iter().map(|d| d.app_id.as_str()).collect();
        assert_eq!(dropped, vec!["/a07"], "{:?}", cleaned.dropped);
        assert!(
            cleaned.dropped[0]
                .reason
                .contains("breaks the config for apps")
        );
        assert!(poison_check(&cleaned.rendered).is_ok());
        assert_eq!(cleaned.rendered.backends.len(), 19);
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
