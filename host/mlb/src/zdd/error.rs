//! Why a zdd run stopped, and the exit code each reason maps to (0–9 as
//! marathon-lb's `zdd_exceptions.py` assigns them, 10 and 11 added).

/// A failed run. `exit_code` is the process exit status.
#[derive(Debug, thiserror::Error)]
pub enum ZddError {
    /// Anything not covered below (zdd.py: an unknown exception).
    #[error("{0}")]
    Unexpected(String),
    /// A combination of flags that cannot work.
    #[error("{0}")]
    InvalidArgs(String),
    /// The app JSON lacks something zdd needs.
    #[error("{message} (field {field})")]
    MissingField {
        /// What is wrong and what to do.
        message: String,
        /// The field or label.
        field: String,
    },
    /// A marathon-lb instance could not be read.
    #[error("marathon-lb {url}: {message}")]
    LbEndpoint {
        /// The instance.
        url: String,
        /// What happened.
        message: String,
    },
    /// Marathon could not be read.
    #[error("Marathon: {0}")]
    Marathon(String),
    /// `POST /v2/apps` failed.
    #[error("creating the app failed: {0}")]
    Create(String),
    /// `DELETE /v2/apps/{id}` failed.
    #[error("deleting the app failed: {0}")]
    Delete(String),
    /// Scaling (`PUT /v2/apps/{id}` or `POST /v2/tasks/delete?scale=true`) failed.
    #[error("scaling failed: {0}")]
    Scale(String),
    /// The deployment failed and was rolled back: the old app serves at its target.
    #[error("deployment failed and was rolled back: {0}")]
    RolledBack(String),
    /// The deployment failed and so did the rollback: both apps are kept.
    #[error(
        "deployment failed ({cause}) and the rollback failed too ({rollback}); both apps are kept, fix by hand or run --rollback"
    )]
    RollbackFailed {
        /// Why the deployment stopped.
        cause: String,
        /// Why the rollback did not finish.
        rollback: String,
    },
}

impl ZddError {
    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Unexpected(_) => 2,
            Self::InvalidArgs(_) => 3,
            Self::MissingField { .. } => 4,
            Self::LbEndpoint { .. } => 5,
            Self::Marathon(_) => 6,
            Self::Create(_) => 7,
            Self::Delete(_) => 8,
            Self::Scale(_) => 9,
            Self::RolledBack(_) => 10,
            Self::RollbackFailed { .. } => 11,
        }
    }

    pub(crate) fn missing(field: &str, message: impl Into<String>) -> Self {
        Self::MissingField {
            message: message.into(),
            field: field.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct() {
        let all = [
            ZddError::Unexpected(String::new()),
            ZddError::InvalidArgs(String::new()),
            ZddError::missing("id", ""),
            ZddError::LbEndpoint {
                url: String::new(),
                message: String::new(),
            },
            ZddError::Marathon(String::new()),
            ZddError::Create(String::new()),
            ZddError::Delete(String::new()),
            ZddError::Scale(String::new()),
            ZddError::RolledBack(String::new()),
            ZddError::RollbackFailed {
                cause: String::new(),
                rollback: String::new(),
            },
        ];
        let codes: Vec<u8> = all.iter().map(ZddError::exit_code).collect();
        assert_eq!(codes, (2..=11).collect::<Vec<u8>>());
    }
}
