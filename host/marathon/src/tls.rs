//! TLS settings shared by every HTTP client that talks to Marathon or DC/OS:
//! the `--marathon-ca-cert` bundle (all its certificates) instead of the
//! system roots, and verification switched off only by `--marathon-insecure`.

use crate::SetupError;

/// Apply the CA bundle and the insecure switch to `builder`. An unreadable
/// bundle, or one without any certificate, is an error (never silently
/// ignored).
pub(crate) fn configure(
    mut builder: reqwest::ClientBuilder,
    ca_cert_pem: Option<&[u8]>,
    insecure: bool,
) -> Result<reqwest::ClientBuilder, SetupError> {
    if let Some(pem) = ca_cert_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(SetupError::CaBundle)?;
        if certs.is_empty() {
            return Err(SetupError::NoCertificate);
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if insecure {
        tracing::warn!("--marathon-insecure: TLS certificates are not verified");
        builder = builder.danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

/// What to do about a TLS verification failure in `message` (an error
/// chain), if it is one the CA bundle can fix.
pub(crate) fn hint(message: &str) -> Option<&'static str> {
    if message.contains("CaUsedAsEndEntity") {
        Some(
            "Marathon's certificate is marked as a CA (basicConstraints CA:TRUE, the default of `openssl req -x509`) and cannot be a server certificate: give --marathon-ca-cert the CA that signed a separate server certificate, or re-create the self-signed certificate with basicConstraints CA:FALSE and the host name in subjectAltName",
        )
    } else if message.contains("UnknownIssuer") {
        Some(
            "Marathon's certificate was not issued by a trusted CA: give --marathon-ca-cert the CA certificate that signed it (PEM)",
        )
    } else if message.contains("NotValidForName") {
        Some(
            "Marathon's certificate does not name the host of the --marathon URL in its subjectAltName",
        )
    } else {
        None
    }
}
