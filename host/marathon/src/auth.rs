//! Marathon basic-auth credentials (`--marathon-auth-credential-file` beats
//! `--auth-credentials`). The password is never printed: `Debug` hides it.

use std::fmt;
use std::path::Path;

/// `user:password` for HTTP basic auth.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Credentials that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Not of the form `user:password`.
    #[error("{source_name}: credentials must be of the form user:password (exactly one ':')")]
    Malformed {
        /// Where they came from.
        source_name: String,
    },
    /// The credential file could not be read.
    #[error(
        "--marathon-auth-credential-file {path}: cannot read it ({error}): give a readable file whose first line is user:password"
    )]
    File {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
}

impl Credentials {
    /// Parse `user:password` (marathon-lb requires exactly two parts).
    pub fn parse(text: &str, source_name: &str) -> Result<Self, CredentialsError> {
        let parts: Vec<&str> = text.split(':').collect();
        match parts[..] {
            [user, password] => Ok(Self {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err(CredentialsError::Malformed {
                source_name: source_name.to_owned(),
            }),
        }
    }

    /// The first line of `path`, CR/LF stripped.
    pub fn from_file(path: &Path) -> Result<Self, CredentialsError> {
        let text = std::fs::read_to_string(path).map_err(|error| CredentialsError::File {
            path: path.display().to_string(),
            error,
        })?;
        let line = text
            .lines()
            .next()
            .unwrap_or("")
            .trim_end_matches(['\r', '\n']);
        Self::parse(
            line,
            &format!("--marathon-auth-credential-file {}", path.display()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_hides_password() {
        let c = Credentials::parse("bob:s3cret", "test").unwrap();
        assert_eq!(c.user, "bob");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(Credentials::parse("a:b:c", "test").is_err());
        assert!(Credentials::parse("nocolon", "test").is_err());
    }
}
