//! The pieces one service contributes, and the state shared across services.

use std::collections::{BTreeMap, BTreeSet, HashSet};

/// A map file under construction: `key backend` lines, exact duplicates
/// dropped, first occurrence kept (O(1) per entry).
#[derive(Debug, Default, Clone)]
pub struct MapFile {
    entries: Vec<(String, String)>,
    seen: HashSet<(String, String)>,
}

impl MapFile {
    /// Add `key → backend` unless that exact pair is present.
    pub fn insert(&mut self, key: String, backend: String) {
        let entry = (key, backend);
        if self.seen.insert(entry.clone()) {
            self.entries.push(entry);
        }
    }

    /// Whether the exact pair is present.
    pub fn contains(&self, key: &str, backend: &str) -> bool {
        self.seen.contains(&(key.to_owned(), backend.to_owned()))
    }

    /// The file text.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.entries {
            out.push_str(k);
            out.push(' ');
            out.push_str(v);
            out.push('\n');
        }
        out
    }
}

/// "Only the first time overall" flags of map mode, and app ids that have
/// their :9091 ACL already.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) map_http_done: bool,
    pub(crate) map_https_done: bool,
    pub(crate) map_appid_done: bool,
    pub(crate) appids: HashSet<String>,
    pub(crate) domain_map: MapFile,
    pub(crate) app_map: MapFile,
}

/// One vhost's share of the `--group-https-by-vhost` frontends.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct GroupedVhost {
    pub(crate) chunks: Vec<(i64, String)>,
    pub(crate) certs: BTreeSet<String>,
    pub(crate) bind_options: BTreeSet<String>,
}

/// The vhost routing pieces of one service.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct VhostParts {
    pub(crate) weight: i64,
    pub(crate) http: String,
    pub(crate) https: String,
    pub(crate) grouped: BTreeMap<String, GroupedVhost>,
}

/// Everything one service adds to the config.
#[derive(Debug, Default)]
pub(crate) struct Parts {
    pub(crate) userlist: String,
    pub(crate) frontend: String,
    pub(crate) backend: String,
    pub(crate) vhost: Option<VhostParts>,
    pub(crate) appid_acl: String,
    pub(crate) claims_map_http: bool,
    pub(crate) claims_map_https: bool,
    pub(crate) claims_map_appid: bool,
    pub(crate) appid: Option<String>,
    pub(crate) domain_entries: Vec<(String, String)>,
    pub(crate) app_entries: Vec<(String, String)>,
}

impl Parts {
    /// Whether `other` adds the same to the config as this except, maybe,
    /// its backend section.
    pub(crate) fn same_but_backend(&self, other: &Parts) -> bool {
        let Parts {
            userlist,
            frontend,
            backend: _,
            vhost,
            appid_acl,
            claims_map_http,
            claims_map_https,
            claims_map_appid,
            appid,
            domain_entries,
            app_entries,
        } = self;
        *userlist == other.userlist
            && *frontend == other.frontend
            && *vhost == other.vhost
            && *appid_acl == other.appid_acl
            && *claims_map_http == other.claims_map_http
            && *claims_map_https == other.claims_map_https
            && *claims_map_appid == other.claims_map_appid
            && *appid == other.appid
            && *domain_entries == other.domain_entries
            && *app_entries == other.app_entries
    }
}

impl Shared {
    /// Apply the state changes of a service that rendered successfully.
    pub(crate) fn commit(&mut self, parts: &Parts) {
        self.map_http_done |= parts.claims_map_http;
        self.map_https_done |= parts.claims_map_https;
        self.map_appid_done |= parts.claims_map_appid;
        if let Some(id) = &parts.appid {
            self.appids.insert(id.clone());
        }
        for (k, v) in &parts.domain_entries {
            self.domain_map.insert(k.clone(), v.clone());
        }
        for (k, v) in &parts.app_entries {
            self.app_map.insert(k.clone(), v.clone());
        }
    }
}
