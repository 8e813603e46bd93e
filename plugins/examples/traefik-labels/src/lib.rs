//! Example label plugin: a Traefik-v1-style label scheme mapped onto
//! marathon-lb services (world `label-plugin` of `wit/mlb-plugins.wit`).
//!
//! Meant to run after the default plugin in a chain: it returns the
//! services it received, untouched and in order, followed by one service for
//! every app that asks for one with `traefik.*` labels.
//!
//! # Labels
//!
//! An app gets a Traefik service if it has `traefik.enable=true`, or a
//! `traefik.frontend.rule` label and no `traefik.enable=false`.
//!
//! - `traefik.frontend.rule` — `;`-separated matchers: `Host:a.example.com,b.example.com`
//!   (→ the service's `hostname`, lowercased; hostnames made of `a-z 0-9 . - *`)
//!   and `PathPrefix:/api` (→ `path`). Any other matcher rejects the app.
//! - `traefik.portIndex` (default 0) — which service port (of
//!   `portDefinitions`, else `ports`) the
//!   service binds and which task port `task.ports[i]` reaches the tasks.
//! - `traefik.port` — one port (1..65535) used to reach every task instead.
//! - `traefik.backend` — the backend name (`A-Z a-z 0-9 _ . : -`); default
//!   `traefik_<app id without its leading '/', chars outside [A-Za-z0-9-] → '_'>_<service port>`.
//! - `traefik.backend.loadbalancer.method` — `wrr`/`drr` → `roundrobin`,
//!   `leastconn` → `leastconn`; anything else → `roundrobin` with a warning.
//! - `traefik.frontend.passHostHeader` and other `traefik.*` labels are
//!   ignored (but, like every `traefik.*` label, may not hold control characters).
//!
//! The service is `mode http`, `bind-addr *`, with one server per task whose
//! state is none or `TASK_RUNNING` (ip = the resolved host ip, else the host;
//! name `<ip>_<port>` with chars outside `[A-Za-z0-9-]` → `_`; ids 1..n in
//! (ip, port) order; duplicates dropped).
//!
//! A bad label value rejects only that app's Traefik service, with an
//! `error` diagnostic naming the app and the label. An app with no running
//! task is left out with an `info` diagnostic; one whose service port is
//! already served for the same app by an input service is left out with a
//! `warning`; a backend name already taken is an `error`.
//!
//! # Configuration
//!
//! - `group=NAME` — the `groups` of every service built (repeatable; default
//!   `external`). Any other key makes `interpret` return an error.
//!
//! # Layout
//!
//! - this file: WIT bindings and the exported `interpret`.
//! - `rule`: the `traefik.frontend.rule` parser.
//! - `services`: configuration, label validation and service building.

mod rule;
mod services;

wit_bindgen::generate!({
    world: "label-plugin",
    path: "../../../wit",
});

use exports::mlb::plugins::label_interpreter::{Guest, LabelOutput};
use mlb::plugins::types::{App, Config, InterpretOptions, Service};

struct TraefikLabels;

impl Guest for TraefikLabels {
    fn interpret(
        apps: Vec<App>,
        services: Vec<Service>,
        _options: InterpretOptions,
        config: Config,
    ) -> Result<LabelOutput, String> {
        let settings = services::parse_config(&config)?;
        let out = services::interpret(&apps, services, &settings);
        Ok(LabelOutput {
            services: out.services,
            diagnostics: out.diagnostics,
        })
    }
}

export!(TraefikLabels);
