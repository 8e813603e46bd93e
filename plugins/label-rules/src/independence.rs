//! Which apps can be interpreted on their own.
//!
//! Two rules look across apps: the blue/green merge (apps sharing
//! `HAPROXY_DEPLOYMENT_GROUP`) and the IP-per-task service-port assigner
//! (ports handed out in app order to apps that declare none). Every other
//! app's services and diagnostics depend only on the app and the options —
//! which lets a host reuse them while the app is unchanged.

use mlb_model::App;

use crate::labels::app_label;
use crate::reference::DEPLOYMENT_GROUP;

/// Whether `app`'s services and diagnostics depend on `app` and the
/// options alone (conservatively: an app without declared service ports
/// counts as dependent, whatever its network mode).
pub fn stands_alone(app: &App) -> bool {
    let deployment = app_label(app, DEPLOYMENT_GROUP).is_some();
    let declared_ports = match &app.port_definitions {
        Some(defs) => defs.iter().any(Option::is_some),
        None => !app.ports.is_empty(),
    } || app.port_mappings.iter().any(|m| m.service_port.is_some());
    !deployment && declared_ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_members_and_portless_apps_depend_on_others() {
        let plain = App {
            id: "/a".into(),
            ports: vec![10000],
            ..App::default()
        };
        assert!(stands_alone(&plain));
        let mut blue = plain.clone();
        blue.labels.push((DEPLOYMENT_GROUP.into(), "a".into()));
        assert!(!stands_alone(&blue));
        let portless = App {
            id: "/b".into(),
            port_definitions: Some(vec![]),
            ..App::default()
        };
        assert!(!stands_alone(&portless));
    }
}
