//! Which ACL template goes where for one service's vhosts (the decisions of
//! marathon-lb's `generateHttpVhostAcl`), as data: [`plan`] turns the
//! service's routing facts ([`Routing`]) into a list of [`Step`]s that
//! `vhost` renders. No template text is read here.

use mlb_model::Service;

use super::RenderSettings;
use super::parts::Shared;
use crate::templates::TemplateName as T;

/// A variable of the vhost ACL templates; the emitter supplies its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    /// `{path}`: `HAPROXY_{n}_PATH`.
    Path,
    /// `{cleanedUpHostname}`: the ACL name (first vhost, sanitized, plus the
    /// app id).
    Acl,
    /// `{hostname}`: the vhost of the step.
    Host,
    /// `{realm}`: the realm of `HAPROXY_{n}_AUTH`.
    Realm,
    /// `{backend}`.
    Backend,
    /// `{appId}`.
    AppId,
    /// `{bindAddr}`.
    BindAddr,
    /// `{haproxy_dir}`: where the map files live.
    HaproxyDir,
}

impl Var {
    /// The placeholder name in the templates.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Var::Path => "path",
            Var::Acl => "cleanedUpHostname",
            Var::Host => "hostname",
            Var::Realm => "realm",
            Var::Backend => "backend",
            Var::AppId => "appId",
            Var::BindAddr => "bindAddr",
            Var::HaproxyDir => "haproxy_dir",
        }
    }
}

/// Where a rendered ACL goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sink<'a> {
    /// The service's lines of the :80 frontend.
    Http,
    /// :443 lines shared by every vhost of a multi-vhost service (its path
    /// ACLs); [`Step::ShareHead`] copies them to each vhost's SNI frontend.
    HttpsShared,
    /// :443 lines of one vhost: the :443 frontend and that vhost's SNI
    /// frontend (`--group-https-by-vhost`), at the service's weight then.
    Https(&'a str),
}

/// One ACL to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Acl<'a> {
    pub(crate) sink: Sink<'a>,
    pub(crate) template: T,
    /// The value of `{hostname}`.
    pub(crate) vhost: &'a str,
    /// The variables the template may use, in order.
    pub(crate) vars: &'static [Var],
}

/// A map file marathon-lb routes through in `--haproxy-map` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MapSide {
    /// The :80 frontend's `domain2backend.map` lookup.
    Http,
    /// The :443 frontend's `domain2backend.map` lookup.
    Https,
}

/// One thing the vhost routing of a service does, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step<'a> {
    /// Record the service's `SSL_CERT` / `BIND_OPTIONS` for this vhost's
    /// SNI frontend.
    Tls(&'a str),
    /// Add the [`Sink::HttpsShared`] lines (even when empty) to this vhost's
    /// SNI frontend.
    ShareHead(&'a str),
    /// This service is the first to use the map lookup of `MapSide`: it
    /// renders the lookup, and its entries sort last (weight -1 from here on).
    ClaimMap(MapSide),
    /// Render an ACL.
    Emit(Acl<'a>),
    /// Add `vhost → backend` to `domain2backend.map`.
    DomainEntry(&'a str),
}

/// The facts about a service that decide its vhost routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Routing<'a> {
    /// `HAPROXY_{n}_VHOST` split on `,`.
    pub(crate) vhosts: Vec<&'a str>,
    /// A non-empty `HAPROXY_{n}_PATH`.
    pub(crate) path: bool,
    /// `HAPROXY_{n}_AUTH` with a non-empty realm.
    pub(crate) auth: bool,
    /// `HAPROXY_{n}_REDIRECT_TO_HTTPS`.
    pub(crate) redirect: bool,
    /// `--haproxy-map`.
    pub(crate) map: bool,
    /// An earlier service rendered the :80 map lookup.
    pub(crate) map_http_done: bool,
    /// An earlier service rendered the :443 map lookup.
    pub(crate) map_https_done: bool,
}

impl<'a> Routing<'a> {
    /// The routing facts of `s` (which has a hostname).
    pub(crate) fn of(s: &'a Service, settings: &RenderSettings, shared: &Shared) -> Self {
        Self {
            vhosts: s
                .hostname
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .collect(),
            path: s.path.as_deref().is_some_and(|p| !p.is_empty()),
            auth: s.auth.as_ref().is_some_and(|a| !a.realm.is_empty()),
            redirect: s.redirect_to_https,
            map: settings.haproxy_map,
            map_http_done: shared.map_http_done,
            map_https_done: shared.map_https_done,
        }
    }
}

use Var::{Acl as A, AppId, Backend, BindAddr, HaproxyDir, Host, Path, Realm};

/// The variables of a full vhost ACL (ACL and routing rule).
const ACL: &[Var] = &[A, Host, AppId, Backend];
/// [`ACL`] with the auth realm.
const ACL_AUTH: &[Var] = &[A, Host, AppId, Realm, Backend];
/// [`ACL`] with the path.
const ACL_PATH: &[Var] = &[A, Host, Path, AppId, Backend];
/// [`ACL`] with the path and the auth realm.
const ACL_AUTH_PATH: &[Var] = &[A, Host, Path, AppId, Realm, Backend];

/// The steps of `r`'s vhost routing.
pub(crate) fn plan<'a>(r: &Routing<'a>) -> Vec<Step<'a>> {
    let mut steps = Vec::new();
    if r.vhosts.len() > 1 {
        plan_many(r, &mut steps);
    } else {
        plan_one(r, r.vhosts.first().copied().unwrap_or_default(), &mut steps);
    }
    steps
}

fn emit<'a>(sink: Sink<'a>, template: T, vhost: &'a str, vars: &'static [Var]) -> Step<'a> {
    Step::Emit(Acl {
        sink,
        template,
        vhost,
        vars,
    })
}

/// One vhost: the ACL and routing rule in one template each.
fn plan_one<'a>(r: &Routing<'a>, vhost: &'a str, steps: &mut Vec<Step<'a>>) {
    let http = |template: T, vars: &'static [Var]| emit(Sink::Http, template, vhost, vars);
    let https = |template: T, vars| emit(Sink::Https(vhost), template, vhost, vars);
    steps.push(Step::Tls(vhost));
    if r.path {
        if r.redirect {
            steps.push(http(T::HTTP_FRONTEND_ACL_ONLY, &[A, Host]));
            steps.push(http(
                T::HTTP_FRONTEND_ACL_ONLY_WITH_PATH,
                &[A, Host, Path, Backend],
            ));
            let vars = &[BindAddr, A, Backend];
            steps.push(http(T::BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH, vars));
        } else if r.auth {
            steps.push(http(T::HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH, ACL_AUTH_PATH));
        } else {
            steps.push(http(T::HTTP_FRONTEND_ACL_WITH_PATH, ACL_PATH));
        }
        steps.push(https(
            T::HTTPS_FRONTEND_ACL_ONLY_WITH_PATH,
            &[Path, Backend],
        ));
        steps.push(if r.auth {
            https(T::HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH, ACL_AUTH_PATH)
        } else {
            https(T::HTTPS_FRONTEND_ACL_WITH_PATH, ACL)
        });
        return;
    }
    if r.redirect {
        steps.push(http(T::HTTP_FRONTEND_ACL, &[A, Host, Backend]));
        steps.push(http(T::BACKEND_REDIRECT_HTTP_TO_HTTPS, &[BindAddr, A]));
    } else if r.auth {
        steps.push(http(T::HTTP_FRONTEND_ACL_WITH_AUTH, ACL_AUTH));
    } else if r.map {
        if !r.map_http_done {
            steps.push(Step::ClaimMap(MapSide::Http));
            steps.push(http(T::MAP_HTTP_FRONTEND_ACL, &[HaproxyDir]));
        }
        steps.push(Step::DomainEntry(vhost));
    } else {
        steps.push(http(T::HTTP_FRONTEND_ACL, ACL));
    }
    if r.auth {
        steps.push(https(T::HTTPS_FRONTEND_ACL_WITH_AUTH, ACL_AUTH));
    } else if r.map {
        steps.push(Step::DomainEntry(vhost));
        if !r.map_https_done {
            steps.push(Step::ClaimMap(MapSide::Https));
            steps.push(https(T::MAP_HTTPS_FRONTEND_ACL, &[Host, HaproxyDir]));
        }
    } else {
        steps.push(https(T::HTTPS_FRONTEND_ACL, ACL));
    }
}

/// Several vhosts: one ACL per vhost, then one routing rule on the ACL of
/// the first.
fn plan_many<'a>(r: &Routing<'a>, steps: &mut Vec<Step<'a>>) {
    let first = r.vhosts[0];
    let http = |template: T, vars: &'static [Var]| emit(Sink::Http, template, first, vars);
    let shared = |template: T, vars| emit(Sink::HttpsShared, template, first, vars);
    if r.path {
        let (http_acl, vars) = if r.auth {
            let vars: &[Var] = &[Path, A, Host, Realm, Backend];
            (T::HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH, vars)
        } else {
            (T::HTTP_FRONTEND_ACL_ONLY_WITH_PATH, &[Path, Backend][..])
        };
        steps.push(http(http_acl, vars));
        steps.push(shared(T::HTTPS_FRONTEND_ACL_ONLY_WITH_PATH, vars));
    }
    let mut map_http_done = r.map_http_done;
    let mut map_https_done = r.map_https_done;
    for &vhost in &r.vhosts {
        let http = |template: T, vars: &'static [Var]| emit(Sink::Http, template, vhost, vars);
        let https = |template: T, vars| emit(Sink::Https(vhost), template, vhost, vars);
        steps.push(Step::ShareHead(vhost));
        steps.push(Step::Tls(vhost));
        if r.map && !r.path && !r.auth && !r.redirect {
            if !map_http_done {
                steps.push(Step::ClaimMap(MapSide::Http));
                steps.push(http(T::MAP_HTTP_FRONTEND_ACL_ONLY, &[HaproxyDir]));
                map_http_done = true;
            }
            steps.push(Step::DomainEntry(vhost));
        } else {
            steps.push(http(T::HTTP_FRONTEND_ACL_ONLY, &[A, Host]));
        }
        if r.path && r.auth {
            steps.push(https(T::HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH, ACL_AUTH));
        } else if r.path {
            steps.push(https(T::HTTPS_FRONTEND_ACL_WITH_PATH, ACL));
        } else if r.auth {
            steps.push(https(T::HTTPS_FRONTEND_ACL_WITH_AUTH, ACL_AUTH));
        } else if r.map {
            if !map_https_done {
                steps.push(Step::ClaimMap(MapSide::Https));
                steps.push(https(T::MAP_HTTPS_FRONTEND_ACL, &[Host, HaproxyDir]));
                map_https_done = true;
            }
            steps.push(Step::DomainEntry(vhost));
        } else {
            steps.push(https(T::HTTPS_FRONTEND_ACL, ACL));
        }
    }
    steps.push(if r.redirect && r.path {
        http(
            T::BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH,
            &[BindAddr, A, Backend],
        )
    } else if r.redirect {
        http(T::BACKEND_REDIRECT_HTTP_TO_HTTPS, &[BindAddr, A])
    } else if r.path && r.auth {
        http(
            T::HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH,
            &[A, Realm, Backend],
        )
    } else if r.path {
        http(T::HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH, &[A, Backend])
    } else if r.auth {
        http(
            T::HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH,
            &[A, Realm, Backend],
        )
    } else if !r.map {
        http(T::HTTP_FRONTEND_ROUTING_ONLY, &[A, Backend])
    } else {
        // The map lookup routes the vhosts.
        return;
    });
}

#[cfg(test)]
mod tests;
