//! The Marathon calls zdd makes, over the controller's client (same TLS
//! verification, basic / DC/OS auth, failover, timeouts): the reads, and the
//! writes zdd.py makes in the same shapes (`POST /v2/apps`,
//! `PUT /v2/apps/{id}` with `{"instances": n}`,
//! `POST /v2/tasks/delete?scale=true` with `{"ids": [...]}`,
//! `DELETE /v2/apps/{id}`).

use reqwest::Method;
use serde_json::{Value, json};

use super::error::ZddError;
use mlb_marathon::{MarathonClient, MarathonError};

/// Marathon, for zdd.
#[derive(Debug)]
pub struct Api {
    client: MarathonClient,
    /// Make no write (`--dry-run`): writes are refused, loudly.
    pub read_only: bool,
}

fn json_of(body: &[u8]) -> Result<Value, ZddError> {
    serde_json::from_slice(body).map_err(|e| ZddError::Marathon(format!("answer is not JSON: {e}")))
}

/// `/x` → `/x`, `x` → `/x`; an id that is not a plain Marathon app id
/// (letters, digits, '-', '.', '_', '/'; no `.` or `..` segment) is refused
/// rather than pasted into the URL.
fn path_of(id: &str) -> Result<String, ZddError> {
    let refuse = |why: String| {
        ZddError::missing(
            "id",
            format!("app id {id:?} {why}; zdd only handles plain Marathon app ids"),
        )
    };
    mlb_model::allowlist::check(mlb_model::allowlist::Class::AppId, id)
        .map_err(|r| refuse(r.to_string()))?;
    let path = format!("/{}", id.trim_start_matches('/'));
    if path
        .split('/')
        .skip(1)
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(refuse("has an empty, '.' or '..' segment".into()));
    }
    Ok(path)
}

impl Api {
    /// Wrap a client.
    pub fn new(client: MarathonClient, read_only: bool) -> Self {
        Self { client, read_only }
    }

    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Vec<u8>, MarathonError> {
        if self.read_only && method != Method::GET {
            // A programming error, never reached by a dry run's code paths.
            return Err(MarathonError::DryRun {
                method: method.to_string(),
                path: path.to_owned(),
            });
        }
        let body = body.map(|b| b.to_string().into_bytes());
        self.client.request(method, path, body.as_deref()).await
    }

    /// `GET /v2/leader`: a leader is elected and answers.
    pub async fn leader(&mut self) -> Result<String, ZddError> {
        let body = self
            .call(Method::GET, "/v2/leader", None)
            .await
            .map_err(|e| ZddError::Marathon(e.to_string()))?;
        let v = json_of(&body)?;
        Ok(v.get("leader")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned())
    }

    /// `GET /v2/apps`.
    pub async fn apps(&mut self) -> Result<Vec<Value>, ZddError> {
        let body = self
            .call(Method::GET, "/v2/apps", None)
            .await
            .map_err(|e| ZddError::Marathon(e.to_string()))?;
        let mut v = json_of(&body)?;
        super::labels::drop_nulls(&mut v);
        match v.get_mut("apps").map(Value::take) {
            Some(Value::Array(apps)) => Ok(apps),
            _ => Err(ZddError::Marathon("GET /v2/apps: no \"apps\" list".into())),
        }
    }

    /// `GET /v2/apps/{id}` (tasks embedded); `None` when it does not exist.
    pub async fn app(&mut self, id: &str) -> Result<Option<Value>, ZddError> {
        let path = format!(
            "/v2/apps{}?embed=app.tasks&embed=app.lastTaskFailure",
            path_of(id)?
        );
        match self.call(Method::GET, &path, None).await {
            Ok(body) => {
                let mut v = json_of(&body)?;
                super::labels::drop_nulls(&mut v);
                Ok(v.get_mut("app").map(Value::take))
            }
            Err(MarathonError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(ZddError::Marathon(e.to_string())),
        }
    }

    /// `POST /v2/apps`.
    pub async fn create(&mut self, app: &Value) -> Result<(), ZddError> {
        self.call(Method::POST, "/v2/apps", Some(app))
            .await
            .map(drop)
            .map_err(|e| ZddError::Create(format!("{}: {e}", super::labels::app_id(app))))
    }

    /// `PUT /v2/apps/{id}` with `{"instances": n}`; `force` overrides a
    /// running deployment (rollback only).
    pub async fn scale(&mut self, id: &str, n: u64, force: bool) -> Result<(), ZddError> {
        let q = if force { "?force=true" } else { "" };
        let path = format!("/v2/apps{}{q}", path_of(id)?);
        self.call(Method::PUT, &path, Some(&json!({ "instances": n })))
            .await
            .map(drop)
            .map_err(|e| ZddError::Scale(format!("{id} to {n} instances: {e}")))
    }

    /// `POST /v2/tasks/delete?scale=true` with `{"ids": [...]}` (`force`:
    /// also while the app deploys; rollback only). `Ok(false)` when Marathon
    /// answers 404: a task is gone already (it failed or finished between
    /// the read and the kill; Marathon kills none of the list then).
    pub async fn kill(&mut self, ids: &[String], force: bool) -> Result<bool, ZddError> {
        let path = if force {
            "/v2/tasks/delete?scale=true&force=true"
        } else {
            "/v2/tasks/delete?scale=true"
        };
        match self
            .call(Method::POST, path, Some(&json!({ "ids": ids })))
            .await
        {
            Ok(_) => Ok(true),
            Err(MarathonError::Status { status: 404, .. }) => Ok(false),
            Err(e) => Err(ZddError::Scale(format!("killing {ids:?}: {e}"))),
        }
    }

    /// `DELETE /v2/apps/{id}` (`force` cancels its running deployment).
    pub async fn delete(&mut self, id: &str, force: bool) -> Result<(), ZddError> {
        let q = if force { "?force=true" } else { "" };
        let path = format!("/v2/apps{}{q}", path_of(id)?);
        self.call(Method::DELETE, &path, None)
            .await
            .map(drop)
            .map_err(|e| ZddError::Delete(format!("{id}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_are_checked_before_they_go_into_a_url() {
        assert_eq!(path_of("/shop/web-1.v2_x").unwrap(), "/shop/web-1.v2_x");
        assert_eq!(path_of("web").unwrap(), "/web");
        for bad in [
            "/a?force=true",
            "/a#b",
            "/a b",
            "/a%2Fb",
            "/a/../b",
            "/a//b",
            "/",
            "",
        ] {
            let e = path_of(bad).unwrap_err();
            assert!(matches!(e, ZddError::MissingField { .. }), "{bad:?}: {e}");
            let text = e.to_string();
            assert!(text.contains(&format!("{bad:?}")), "{text}");
            assert!(text.contains("(field id)"), "{text}");
        }
    }
}
