//! Helpers shared by the fuzz targets in `fuzz_targets/`: arbitrary JSON values and header
//! lists built from fuzzer bytes.

use arbitrary::{Arbitrary, Unstructured};
use serde_json::{Map, Number, Value};

/// How deep generated JSON nests: deep enough for every shape, shallow enough to stay fast.
const MAX_DEPTH: usize = 4;

/// A JSON value made from fuzzer bytes (any shape, floats included, no NaN or infinity).
#[derive(Debug, Clone)]
pub struct Json(pub Value);

impl<'a> Arbitrary<'a> for Json {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        json(u, 0).map(Json)
    }
}

fn json(u: &mut Unstructured<'_>, depth: usize) -> arbitrary::Result<Value> {
    let kinds = if depth >= MAX_DEPTH { 6 } else { 8 };
    Ok(match u.choose_index(kinds)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => Value::from(u.arbitrary::<u64>()?),
        4 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        5 => Value::String(u.arbitrary()?),
        6 => {
            let n = u.int_in_range(0..=4)?;
            Value::Array(
                (0..n)
                    .map(|_| json(u, depth + 1))
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => {
            let n = u.int_in_range(0..=4)?;
            let mut map = Map::new();
            for _ in 0..n {
                map.insert(u.arbitrary()?, json(u, depth + 1)?);
            }
            Value::Object(map)
        }
    })
}

/// Keeps the first of each name, as a JSON object keeps one member per key.
#[must_use]
pub fn unique_by_name<T>(items: Vec<(String, T)>) -> Vec<(String, T)> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|(name, _)| seen.insert(name.clone()))
        .collect()
}

/// Splits fuzzer bytes into text pieces on `separator`, decoding each lossily as UTF-8 (the
/// callers get header values and messages as `&str`).
#[must_use]
pub fn split_lossy(data: &[u8], separator: u8) -> Vec<String> {
    data.split(|b| *b == separator)
        .map(|piece| String::from_utf8_lossy(piece).into_owned())
        .collect()
}
