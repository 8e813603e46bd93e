//! Query-string parsing that keeps repeated keys (`embed=a&embed=b`, `event_type=x&event_type=y`),
//! which serde-based extractors collapse.

/// Decoded `key=value` pairs in request order.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a raw query string (without the `?`); `None` gives an empty query.
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Self(pairs)
    }

    /// Every value given for `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value given for `key`.
    pub fn first(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-decoding with `+` as space (application/x-www-form-urlencoded). Invalid escapes are kept as is.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-decoding of a path segment (`+` stays `+`).
pub fn decode_path(s: &str) -> String {
    decode(&s.replace('+', "%2B"))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_repeated_keys_and_decodes() {
        let q = Query::parse(Some(
            "embed=apps.tasks&embed=apps.counts&x=a%2Fb+c&flag&bad=%zz%4",
        ));
        assert_eq!(
            q.all("embed").collect::<Vec<_>>(),
            ["apps.tasks", "apps.counts"]
        );
        assert_eq!(q.first("x"), Some("a/b c"));
        assert_eq!(q.first("flag"), Some(""));
        assert_eq!(q.first("bad"), Some("%zz%4"));
        assert_eq!(q.first("none"), None);
    }

    #[test]
    fn path_decoding_keeps_plus() {
        assert_eq!(decode_path("a+b%20c"), "a+b c");
    }
}
