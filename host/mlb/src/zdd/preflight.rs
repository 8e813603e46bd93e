//! Checks before any write: the Marathon leader answers; every marathon-lb
//! instance answers with a parseable stats CSV that has the group's
//! backend; the new service port is not used by an app outside the group;
//! no app outside the group already has the new app's id.

use serde_json::Value;

use super::api::Api;
use super::error::ZddError;
use super::labels::{app_id, backend_name, group, service_port};
use super::lbs::Lbs;

/// Run the checks. `running` is the group's current app (if any, and the
/// swap will need the instances), `apps` every app in Marathon.
pub async fn check(
    api: &mut Api,
    lbs: &Lbs,
    apps: &[Value],
    running: Option<&Value>,
    new_app: Option<&Value>,
) -> Result<(), ZddError> {
    let leader = api.leader().await?;
    if leader.is_empty() {
        return Err(ZddError::Marathon("no Marathon leader is elected".into()));
    }
    if let Some(old) = running {
        let backend = backend_name(old).ok_or_else(|| {
            ZddError::missing(
                "HAPROXY_0_PORT",
                format!(
                    "the running app {} has no HAPROXY_0_PORT label: it was not deployed by zdd; redeploy it with zdd first",
                    app_id(old)
                ),
            )
        })?;
        for url in &lbs.urls {
            let view = lbs.view(url).await?;
            if !view.rows.iter().any(|r| r.pxname == backend) {
                return Err(ZddError::LbEndpoint {
                    url: url.clone(),
                    message: format!(
                        "no backend {backend} in its stats: does this instance serve the HAPROXY_GROUP of {}?",
                        app_id(old)
                    ),
                });
            }
        }
    }
    let Some(new_app) = new_app else {
        return Ok(());
    };
    let own_group = group(new_app);
    let outside = apps
        .iter()
        .filter(|a| group(a) != own_group || own_group.is_none());
    for app in outside {
        if app_id(app) == app_id(new_app) {
            return Err(ZddError::InvalidArgs(format!(
                "app {} already exists and is not part of deployment group {}; rename one of them",
                app_id(app),
                own_group.unwrap_or("")
            )));
        }
        if let (Some(a), Some(b)) = (service_port(app), service_port(new_app))
            && a == b
        {
            return Err(ZddError::InvalidArgs(format!(
                "service port {b} of the new app {} is already used by app {}; change HAPROXY_DEPLOYMENT_ALT_PORT or the service port",
                app_id(new_app),
                app_id(app)
            )));
        }
    }
    Ok(())
}
