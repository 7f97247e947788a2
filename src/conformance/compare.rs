//! JSON comparison that reports every difference by path. Numbers compare by value
//! (`1` equals `1.0`: JSON does not distinguish them).

use serde_json::Value;

/// Every difference between `expected` and `actual`, as `path: what` lines.
pub fn json_diff(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff("$", expected, actual, &mut out);
    out
}

fn diff(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e {
                match a.get(key) {
                    Some(av) => diff(&format!("{path}.{key}"), ev, av, out),
                    None => out.push(format!("{path}.{key}: missing (expected {})", short(ev))),
                }
            }
            for (key, av) in a {
                if !e.contains_key(key) {
                    out.push(format!("{path}.{key}: not expected (found {})", short(av)));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!("{path}: expected {} items, found {}", e.len(), a.len()));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff(&format!("{path}[{i}]"), ev, av, out);
            }
        }
        (Value::Number(e), Value::Number(a)) if e.as_f64() == a.as_f64() => {}
        (e, a) if e == a => {}
        (e, a) => out.push(format!("{path}: expected {}, found {}", short(e), short(a))),
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 { format!("{}...", text.chars().take(77).collect::<String>()) } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_by_value_and_paths_in_messages() {
        assert!(json_diff(&json!({"t": 1}), &json!({"t": 1.0})).is_empty());
        let d = json_diff(&json!({"a": [1, {"b": "x"}], "c": 1}), &json!({"a": [1, {"b": "y"}], "d": 2}));
        assert_eq!(
            d,
            vec![
                "$.a[1].b: expected \"x\", found \"y\"".to_string(),
                "$.c: missing (expected 1)".to_string(),
                "$.d: not expected (found 2)".to_string(),
            ]
        );
    }
}
