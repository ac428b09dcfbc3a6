//! Checks tool arguments against the part of JSON Schema tool definitions use: `type`,
//! `properties`, `required`, `additionalProperties: false`, `enum`, `items`, `minimum`,
//! `maximum`, `minItems`, `maxItems`. Other keywords are ignored (the tool still checks
//! what it needs). Written here because the full validators pull in a large tree of
//! dependencies for features (remote `$ref`s, formats) no tool schema here uses.

use serde_json::Value;

/// `Ok` if `input` satisfies `schema`; otherwise a message for the model naming the field
/// and what is wrong with it.
///
/// # Errors
///
/// The first violation found, e.g. ``"`limit` must be an integer, not a string"``.
pub fn validate(schema: &Value, input: &Value) -> Result<(), String> {
    check(schema, input, "")
}

fn check(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let name = if at.is_empty() { "the arguments" } else { at };
    let name = if at.is_empty() {
        name.to_string()
    } else {
        format!("`{name}`")
    };
    if let Some(expected) = schema.get("type") {
        let allowed: Vec<&str> = match expected {
            Value::String(kind) => vec![kind.as_str()],
            Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.is_empty() && !allowed.iter().any(|kind| is_type(value, kind)) {
            return Err(format!(
                "{name} must be {}, not {}",
                allowed
                    .iter()
                    .map(|kind| article(kind))
                    .collect::<Vec<_>>()
                    .join(" or "),
                article(type_of(value))
            ));
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.contains(value)
    {
        let options: Vec<String> = options.iter().map(Value::to_string).collect();
        return Err(format!("{name} must be one of {}", options.join(", ")));
    }
    if let Some(number) = value.as_f64() {
        if let Some(minimum) = schema.get("minimum").and_then(Value::as_f64)
            && number < minimum
        {
            return Err(format!("{name} must be at least {minimum}"));
        }
        if let Some(maximum) = schema.get("maximum").and_then(Value::as_f64)
            && number > maximum
        {
            return Err(format!("{name} must be at most {maximum}"));
        }
    }
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !fields.contains_key(required) {
                    return Err(format!("`{}` is required", join(at, required)));
                }
            }
            for (field, field_value) in fields {
                match properties.and_then(|properties| properties.get(field)) {
                    Some(field_schema) => check(field_schema, field_value, &join(at, field))?,
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        let known: Vec<&str> = properties
                            .map(|properties| properties.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        return Err(format!(
                            "unknown field `{}`; the fields are: {}",
                            join(at, field),
                            known.join(", ")
                        ));
                    }
                    None => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                return Err(format!("{name} needs at least {min} item(s)"));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && (items.len() as u64) > max
            {
                return Err(format!("{name} takes at most {max} item(s)"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{}[{index}]", at))?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn join(at: &str, field: &str) -> String {
    if at.is_empty() {
        field.to_string()
    } else {
        format!("{at}.{field}")
    }
}

fn is_type(value: &Value, kind: &str) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.as_i64().is_some() || value.as_u64().is_some(),
        _ => true,
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn article(kind: &str) -> String {
    match kind {
        "object" | "array" | "integer" => format!("an {kind}"),
        "null" => "null".to_string(),
        _ => format!("a {kind}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1},
                "mode": {"enum": ["a", "b"]},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2}
            },
            "required": ["path"],
            "additionalProperties": false
        })
    }

    #[test]
    fn valid_arguments_pass() {
        assert_eq!(
            validate(
                &schema(),
                &json!({"path": "a", "limit": 3, "mode": "b", "tags": ["x"]})
            ),
            Ok(())
        );
    }

    #[test]
    fn each_violation_names_the_field() {
        let cases = [
            (
                json!("text"),
                "the arguments must be an object, not a string",
            ),
            (json!({}), "`path` is required"),
            (
                json!({"path": 1}),
                "`path` must be a string, not an integer",
            ),
            (
                json!({"path": "a", "limit": 1.5}),
                "`limit` must be an integer, not a number",
            ),
            (
                json!({"path": "a", "limit": 0}),
                "`limit` must be at least 1",
            ),
            (
                json!({"path": "a", "mode": "c"}),
                "`mode` must be one of \"a\", \"b\"",
            ),
            (
                json!({"path": "a", "tags": [1]}),
                "`tags[0]` must be a string, not an integer",
            ),
            (
                json!({"path": "a", "tags": ["x", "y", "z"]}),
                "`tags` takes at most 2 item(s)",
            ),
            (
                json!({"path": "a", "colour": "red"}),
                "unknown field `colour`; the fields are: limit, mode, path, tags",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(
                validate(&schema(), &input),
                Err(message.to_string()),
                "{input}"
            );
        }
    }
}
