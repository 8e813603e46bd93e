//! Service ports, including marathon-lb's IP-per-task service-port assigner.

use std::collections::{HashMap, HashSet};

use mlb_model::App;
use sha1::{Digest, Sha1};

use crate::network::{NetworkMode, networking_mode, task_ports};

/// How many hashed candidates are tried before taking the lowest free port.
const MAX_CLASHES: usize = 50;

/// Assigns deterministic service ports to IP-per-task apps that have none
/// (Marathon does not report service ports for them before 1.5).
///
/// State lives for one interpretation only: ports are re-derived on every run,
/// in app processing order, exactly as marathon-lb does.
#[derive(Debug)]
pub(crate) struct ServicePortAssigner {
    range: Option<(i64, i64)>,
    by_app: HashMap<(String, i64), Option<i64>>,
    taken: HashSet<i64>,
}

impl ServicePortAssigner {
    /// An assigner for `min..=max`; `0/0` (or an empty range) disables it.
    pub(crate) fn new(min: i64, max: i64) -> Self {
        let range = (min != 0 && max != 0 && min <= max).then_some((min, max));
        Self {
            range,
            by_app: HashMap::new(),
            taken: HashSet::new(),
        }
    }

    fn assign_new(&mut self, app_id: &str, task_port: i64) -> Option<i64> {
        let (min, max) = self.range?;
        let capacity = max - min + 1;
        if capacity <= self.by_app.len() as i64 {
            return None;
        }
        for i in 0..MAX_CLASHES {
            let digest = Sha1::digest(format!("{app_id}-{task_port}-{i}").as_bytes());
            let head = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
            let trial = min + i64::from(head) % capacity;
            if !self.taken.contains(&trial) {
                return Some(trial);
            }
        }
        (min..=max).find(|p| !self.taken.contains(p))
    }

    fn service_port(&mut self, app_id: &str, task_port: i64) -> Option<i64> {
        let key = (app_id.to_owned(), task_port);
        let port = match self.by_app.get(&key) {
            Some(Some(port)) => Some(*port),
            _ => self.assign_new(app_id, task_port),
        };
        if let Some(p) = port {
            self.taken.insert(p);
        }
        self.by_app.insert(key, port);
        port
    }

    /// The service ports of `app`, one per port index; `None` marks a port the
    /// assigner could not serve (range exhausted).
    pub(crate) fn service_ports(&mut self, app: &App) -> Vec<Option<i64>> {
        let mode = networking_mode(app);
        if matches!(mode, NetworkMode::Container | NetworkMode::ContainerBridge) {
            let mapped: Vec<Option<i64>> = app
                .port_mappings
                .iter()
                .filter_map(|m| m.service_port)
                .map(Some)
                .collect();
            if !mapped.is_empty() {
                return mapped;
            }
        }
        let ports: Vec<i64> = match &app.port_definitions {
            Some(defs) => defs.iter().filter_map(|p| *p).collect(),
            None => app.ports.clone(),
        };
        if ports.is_empty()
            && mode == NetworkMode::Container
            && self.range.is_some()
            && let Some(task) = app.tasks.first()
        {
            let task_ports = task_ports(app, task, mode);
            return task_ports
                .into_iter()
                .map(|tp| self.service_port(&app.id, tp))
                .collect();
        }
        ports.into_iter().map(Some).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlb_model::Task;

    fn legacy_ippt(id: &str, ports: &[i64]) -> App {
        App {
            id: id.into(),
            has_ip_address: true,
            discovery_ports: ports.to_vec(),
            tasks: vec![Task::default()],
            ..App::default()
        }
    }

    #[test]
    fn assigned_ports_stay_in_range_and_exhaust_to_none() {
        let mut a = ServicePortAssigner::new(20000, 20001);
        let got = a.service_ports(&legacy_ippt("/a", &[80, 81, 82]));
        assert_eq!(got.len(), 3);
        assert!(got[..2].iter().all(|p| matches!(p, Some(20000..=20001))));
        assert_ne!(got[0], got[1]);
        assert_eq!(got[2], None);
    }

    #[test]
    fn disabled_assigner_gives_nothing() {
        let mut a = ServicePortAssigner::new(0, 0);
        assert!(a.service_ports(&legacy_ippt("/a", &[80])).is_empty());
    }

    #[test]
    fn port_definitions_override_old_ports() {
        let mut a = ServicePortAssigner::new(0, 0);
        let app = App {
            ports: vec![1, 2],
            port_definitions: Some(vec![Some(10), None, Some(11)]),
            ..App::default()
        };
        assert_eq!(a.service_ports(&app), vec![Some(10), Some(11)]);
    }
}
