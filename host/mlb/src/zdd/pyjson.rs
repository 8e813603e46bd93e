//! JSON text exactly as Python's `json.dumps(v, sort_keys=True, indent=2)`
//! writes it (what zdd.py prints): keys sorted, two-space indent, `", "`-free
//! separators at line ends, `": "` after keys, non-ASCII as `\uXXXX`, empty
//! containers as `[]` / `{}`.

use serde_json::Value;

/// `json.dumps(value, sort_keys=True, indent=2)`.
pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, Some(0), &mut out);
    out
}

/// `json.dumps(value)`: one line, `", "` and `": "` separators (how zdd.py
/// passes apps and task ids to the pre-kill hook).
pub fn compact(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, None, &mut out);
    out
}

/// `depth` is `None` for the one-line form.
fn write_value(value: &Value, depth: Option<usize>, out: &mut String) {
    let inner = depth.map(|d| d + 1);
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separate(i, inner, out);
                write_value(item, inner, out);
            }
            newline(depth, out);
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                separate(i, inner, out);
                write_string(key, out);
                out.push_str(": ");
                write_value(&map[key], inner, out);
            }
            newline(depth, out);
            out.push('}');
        }
    }
}

/// Before item `i`: `,` + newline + indent, or `, ` on one line.
fn separate(i: usize, depth: Option<usize>, out: &mut String) {
    if i > 0 {
        out.push(',');
        if depth.is_none() {
            out.push(' ');
        }
    }
    newline(depth, out);
}

fn newline(depth: Option<usize>, out: &mut String) {
    if let Some(depth) = depth {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', depth * 2));
    }
}

/// Integers as they are; floats like Python's `repr` (`65.0`, `0.1`, `1e+16`).
fn write_number(n: &serde_json::Number, out: &mut String) {
    if n.is_f64() {
        let f = n.as_f64().unwrap_or(0.0);
        let text = f.to_string();
        if (1e-4..1e16).contains(&f.abs()) || f == 0.0 {
            out.push_str(&text);
            if !text.contains('.') {
                out.push_str(".0");
            }
        } else {
            // Python switches to exponent notation outside [1e-4, 1e16).
            let e = format!("{f:e}");
            let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
            let exp: i32 = exp.parse().unwrap_or(0);
            out.push_str(mantissa);
            out.push_str(&format!(
                "e{}{:02}",
                if exp < 0 { '-' } else { '+' },
                exp.abs()
            ));
        }
    } else {
        out.push_str(&n.to_string());
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_python_json_dumps() {
        let v = json!({"b": [1, 0.1, 65.0, 1e16, 1.5e-7], "a": {"z": [], "y": {}},
                       "c": "é\u{1F600}\"\n", "d": null, "e": true});
        // python3 -c 'import json; print(json.dumps(v, sort_keys=True, indent=2))'
        let expected = "{\n  \"a\": {\n    \"y\": {},\n    \"z\": []\n  },\n  \"b\": [\n    1,\n    0.1,\n    65.0,\n    1e+16,\n    1.5e-07\n  ],\n  \"c\": \"\\u00e9\\ud83d\\ude00\\\"\\n\",\n  \"d\": null,\n  \"e\": true\n}";
        assert_eq!(dumps(&v), expected);
        // zdd.py's test_pre_kill_hook arguments.
        assert_eq!(compact(&json!({"id": "oldApp"})), "{\"id\": \"oldApp\"}");
        assert_eq!(
            compact(&json!(["task1", "task2"])),
            "[\"task1\", \"task2\"]"
        );
        assert_eq!(
            compact(&json!({"a": [], "b": {}})),
            "{\"a\": [], \"b\": {}}"
        );
    }
}
