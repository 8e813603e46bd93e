//! Why something was left out, in words an operator can act on.

use std::fmt;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Informational (e.g. a task skipped because it is still staging).
    Info,
    /// Something was skipped that the operator may not expect.
    Warning,
    /// A service or app was rejected because its input is invalid.
    Error,
}

/// A message about one app (and optionally one label of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Severity.
    pub severity: Severity,
    /// The app the message is about (empty for global problems).
    pub app_id: String,
    /// The label (or field) at fault, if any.
    pub label: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// An error about `app_id`'s `label`.
    pub fn error(app_id: &str, label: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, app_id, label, message)
    }

    /// A warning about `app_id`'s `label`.
    pub fn warning(app_id: &str, label: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, app_id, label, message)
    }

    /// An informational note about `app_id`.
    pub fn info(app_id: &str, label: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(Severity::Info, app_id, label, message)
    }

    fn new(
        severity: Severity,
        app_id: &str,
        label: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            app_id: app_id.to_owned(),
            label: label.map(str::to_owned),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{level}: app {}", self.app_id)?;
        if let Some(label) = &self.label {
            write!(f, ", label {label}")?;
        }
        write!(f, ": {}", self.message)
    }
}
