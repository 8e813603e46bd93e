//! TLS settings shared by every HTTP client that talks to Marathon or DC/OS:
//! the `--marathon-ca-cert` bundle (all its certificates) instead of the
//! system roots, and verification switched off only by `--marathon-insecure`.

/// Apply the CA bundle and the insecure switch to `builder`. An unreadable
/// bundle, or one without any certificate, is an error (never silently
/// ignored).
pub(crate) fn configure(
    mut builder: reqwest::ClientBuilder,
    ca_cert_pem: Option<&[u8]>,
    insecure: bool,
) -> Result<reqwest::ClientBuilder, String> {
    if let Some(pem) = ca_cert_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("--marathon-ca-cert: {e}"))?;
        if certs.is_empty() {
            return Err("--marathon-ca-cert: no PEM certificate found".into());
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
