//! The object interfaces that need more than trimming: `user` (ids as strings, `{{auto}}`
//! addresses), `request` (header/cookie/query shapes, method case) and `contexts` (objects only).

use serde_json::Value;

use super::lenient::{preview, scalar_to_string, to_text, Spelling};
use super::{Object, Problems};

/// What SDKs put where the server should fill in the client address.
const AUTO_IP: &str = "{{auto}}";

/// `user`: must be an object; `id`, `username` may be numbers (stringified), `email`,
/// `ip_address` strings; `{{auto}}` resolved to the client address. Unknown keys stay.
pub(super) fn normalize_user(map: &mut Object, client_ip: Option<&str>, problems: &mut Problems) {
    let Some(user) = object_at(map, "user", problems) else {
        return;
    };
    for key in ["id", "username", "email", "ip_address"] {
        let Some(value) = user.get_mut(key) else {
            continue;
        };
        match value {
            Value::String(_) => {}
            Value::Number(_) if key != "ip_address" => *value = Value::String(to_text(value)),
            _ => {
                if !value.is_null() {
                    problems.push(
                        format!("user.{key}"),
                        "invalid_data",
                        format!("{} is not a string", preview(value)),
                    );
                }
                user.remove(key);
            }
        }
    }
    resolve_auto_ip(user, "ip_address", client_ip);
}

fn resolve_auto_ip(obj: &mut Object, key: &str, client_ip: Option<&str>) {
    if obj.get(key).and_then(Value::as_str) != Some(AUTO_IP) {
        return;
    }
    match client_ip {
        Some(ip) => {
            obj.insert(key.to_owned(), Value::String(ip.to_owned()));
        }
        None => {
            obj.remove(key);
        }
    }
}

/// `request`: `method` uppercased; `headers`, `cookies` and `query_string` from a string, an
/// object or pairs into `[[k, v], ...]` (Relay's canonical form); `env.REMOTE_ADDR` `{{auto}}`
/// resolved.
pub(super) fn normalize_request(
    map: &mut Object,
    client_ip: Option<&str>,
    problems: &mut Problems,
) {
    let Some(request) = object_at(map, "request", problems) else {
        return;
    };
    match request.get_mut("method") {
        Some(Value::String(method)) => {
            let method_upper = method.trim().to_ascii_uppercase();
            if method_upper.is_empty() {
                request.remove("method");
            } else {
                *method = method_upper;
            }
        }
        Some(_) => {
            request.remove("method");
        }
        None => {}
    }
    if request.get("url").is_some_and(|u| !u.is_string()) {
        request.remove("url");
    }
    let parsers: [(&str, ParseText); 3] = [
        ("headers", parse_header_lines),
        ("cookies", parse_cookie_header),
        ("query_string", parse_query_string),
    ];
    for (key, parse_text) in parsers {
        let Some(value) = request.remove(key) else {
            continue;
        };
        let pairs = match value {
            Value::String(text) => parse_text(&text),
            Value::Object(dict) => dict
                .into_iter()
                .filter_map(|(k, v)| pair_value(&v).map(|v| (k, v)))
                .collect(),
            Value::Array(items) => items.iter().filter_map(list_pair).collect(),
            Value::Null => continue,
            other => {
                problems.push(
                    format!("request.{key}"),
                    "invalid_data",
                    format!(
                        "{} is not a string, object or list of pairs",
                        preview(&other)
                    ),
                );
                continue;
            }
        };
        if !pairs.is_empty() {
            let canonical = pairs
                .into_iter()
                .map(|(k, v)| Value::Array(vec![Value::String(k), Value::String(v)]))
                .collect();
            request.insert(key.to_owned(), Value::Array(canonical));
        }
    }
    if let Some(Value::Object(env)) = request.get_mut("env") {
        resolve_auto_ip(env, "REMOTE_ADDR", client_ip);
    }
}

/// Parses the string form of a pair list (`a=1; b=2`, `Host: x`, `?a=1`).
type ParseText = fn(&str) -> Vec<(String, String)>;

/// A header/cookie/query value: strings, scalars stringified, a list of strings joined the way
/// repeated HTTP headers are.
fn pair_value(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(pair_value)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Value::Object(_) => Some(value.to_string()),
        scalar => scalar_to_string(scalar, Spelling::Json),
    }
}

fn list_pair(item: &Value) -> Option<(String, String)> {
    let [key, value] = item.as_array()?.as_slice() else {
        return None;
    };
    Some((
        scalar_to_string(key, Spelling::Json).filter(|_| !key.is_null())?,
        pair_value(value)?,
    ))
}

/// `Name: value` lines, as some SDKs send raw headers.
fn parse_header_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            let name = name.trim();
            (!name.is_empty()).then(|| (name.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

/// A `Cookie` header: `a=1; b=2`.
fn parse_cookie_header(text: &str) -> Vec<(String, String)> {
    text.split(';')
        .filter_map(|part| {
            let part = part.trim();
            if part.is_empty() {
                return None;
            }
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            Some((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

/// `a=1&b=x%20y` (a leading `?` tolerated), percent- and plus-decoded like a form.
fn parse_query_string(text: &str) -> Vec<(String, String)> {
    text.strip_prefix('?')
        .unwrap_or(text)
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

fn form_decode(text: &str) -> String {
    if !text.contains(['%', '+']) {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `contexts`: an object of objects; anything else is dropped with a problem.
pub(super) fn normalize_contexts(map: &mut Object, problems: &mut Problems) {
    let Some(contexts) = object_at(map, "contexts", problems) else {
        return;
    };
    contexts.retain(|name, context| {
        let keep = context.is_object();
        if !keep && !context.is_null() {
            problems.push(
                format!("contexts.{name}"),
                "invalid_data",
                format!("{} is not an object", preview(context)),
            );
        }
        keep
    });
}

/// `map[key]` as an object; anything else is removed (with a problem unless it was `null`).
fn object_at<'m>(
    map: &'m mut Object,
    key: &str,
    problems: &mut Problems,
) -> Option<&'m mut Object> {
    if map.get(key).is_some_and(|v| !v.is_object()) {
        if let Some(other) = map.remove(key).filter(|v| !v.is_null()) {
            problems.push(
                key,
                "invalid_data",
                format!("{} is not an object", preview(&other)),
            );
        }
        return None;
    }
    map.get_mut(key).and_then(Value::as_object_mut)
}

#[cfg(test)]
mod tests {
    use crate::event::User;
    use crate::normalize::test_util::{kinds, normalize, normalize_with};
    use serde_json::{json, Value};

    /// Normalizes `{"request": input}` and compares the canonical request.
    fn check_request(input: Value, expected: Value) {
        let (event, _) = normalize(json!({"request": input}));
        assert_eq!(
            event.payload.get("request").cloned().unwrap_or(Value::Null),
            expected,
            "{input}"
        );
    }

    #[test]
    fn request_maps_become_pairs() {
        check_request(
            json!({"method": "post", "headers": {"Content-Type": "text/plain", "X-Multi": ["a", "b"]}, "cookies": "a=1; b=2", "query_string": "?q=a+b&x=%2F&flag"}),
            json!({
                "method": "POST",
                "headers": [["Content-Type", "text/plain"], ["X-Multi", "a, b"]],
                "cookies": [["a", "1"], ["b", "2"]],
                "query_string": [["q", "a b"], ["x", "/"], ["flag", ""]],
            }),
        );
        check_request(
            json!({"headers": [["Host", "x"], ["Bad"], ["N", 1]], "cookies": {"s": "v"}, "query_string": [["a", "1"]]}),
            json!({"headers": [["Host", "x"], ["N", "1"]], "cookies": [["s", "v"]], "query_string": [["a", "1"]]}),
        );
        check_request(
            json!({"headers": "Host: x\r\nAccept: */*\r\n"}),
            json!({"headers": [["Host", "x"], ["Accept", "*/*"]]}),
        );
        check_request(
            json!({"method": 5, "url": 7, "data": "raw body"}),
            json!({"data": "raw body"}),
        );
        check_request(
            json!({"query_string": "%zz=%e2%82%ac"}),
            json!({"query_string": [["%zz", "€"]]}),
        );
        check_request(json!("not an object"), Value::Null);
    }

    #[test]
    fn auto_ip_is_resolved_from_the_client_address() {
        let input = json!({"user": {"ip_address": "{{auto}}", "id": 42}, "request": {"env": {"REMOTE_ADDR": "{{auto}}"}}});
        let (event, _) = normalize_with(input.clone(), |ctx| {
            ctx.client_ip = Some("203.0.113.9".into())
        });
        assert_eq!(
            event.payload["user"],
            json!({"ip_address": "203.0.113.9", "id": "42"})
        );
        assert_eq!(
            event.payload["request"]["env"]["REMOTE_ADDR"],
            "203.0.113.9"
        );
        assert_eq!(
            event.user,
            Some(User {
                id: Some("42".into()),
                ip_address: Some("203.0.113.9".into()),
                ..User::default()
            })
        );
        let (event, _) = normalize(input);
        assert_eq!(event.payload["user"], json!({"id": "42"}));
        assert_eq!(event.payload["request"]["env"], json!({}));
    }

    #[test]
    fn user_fields_must_be_strings() {
        let (event, problems) =
            normalize(json!({"user": {"email": ["x"], "username": 7, "segment": {"kept": true}}}));
        assert_eq!(
            event.payload["user"],
            json!({"username": "7", "segment": {"kept": true}})
        );
        assert_eq!(kinds(&problems), [("user.email", "invalid_data")]);
        let (event, problems) = normalize(json!({"user": "ada"}));
        assert!(event.user.is_none());
        assert_eq!(kinds(&problems), [("user", "invalid_data")]);
        let (event, _) = normalize(json!({"user": {"name": "only a display name"}}));
        assert!(event.user.is_none());
    }

    #[test]
    fn contexts_must_be_objects() {
        let (event, problems) =
            normalize(json!({"contexts": {"os": {"name": "Linux"}, "bad": 3, "gone": null}}));
        assert_eq!(event.payload["contexts"], json!({"os": {"name": "Linux"}}));
        assert_eq!(kinds(&problems), [("contexts.bad", "invalid_data")]);
    }
}
