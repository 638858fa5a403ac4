//! A router's routes as a table: each method and path written once, and
//! the answer to a known path asked with another method (405, not 404)
//! derived from the same table. `http::endpoints` lists every table, and
//! a tidy test holds `docs/endpoints.md` to them.

use http::Method;

/// One route: a method, a path (exact, or with one `{name}` segment that
/// matches a non-empty part without `/`), and what handles it.
pub struct Entry<R> {
    pub method: Method,
    pub path: &'static str,
    pub to: R,
}

impl<R> Entry<R> {
    pub const fn new(method: Method, path: &'static str, to: R) -> Self {
        Entry { method, path, to }
    }
}

/// What a table makes of a request.
#[derive(Debug, PartialEq)]
pub enum Found<'p, R> {
    /// The route, and what its `{name}` segment matched, if it has one.
    Route(R, Option<&'p str>),
    /// The path is the table's, the method is not: 405.
    WrongMethod,
    /// Not this table's path.
    Unknown,
}

pub fn find<'p, R: Copy>(table: &[Entry<R>], method: &Method, path: &'p str) -> Found<'p, R> {
    let mut known = false;
    for entry in table {
        let Some(segment) = matches(entry.path, path) else { continue };
        if entry.method == method {
            return Found::Route(entry.to, segment);
        }
        known = true;
    }
    if known { Found::WrongMethod } else { Found::Unknown }
}

/// `Some(the {name} segment, if any)` when `path` fits `pattern`.
fn matches<'p>(pattern: &str, path: &'p str) -> Option<Option<&'p str>> {
    let Some((before, rest)) = pattern.split_once('{') else {
        return (pattern == path).then_some(None);
    };
    let after = &rest[rest.find('}').expect("a `{name}` segment is closed") + 1..];
    let segment = path.strip_prefix(before)?.strip_suffix(after)?;
    (!segment.is_empty() && !segment.contains('/')).then_some(Some(segment))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Entry<u8>] = &[
        Entry::new(Method::GET, "/api/calls", 1),
        Entry::new(Method::POST, "/api/calls", 2),
        Entry::new(Method::GET, "/api/calls/{call_sid}", 3),
        Entry::new(Method::GET, "/api/calls/{call_sid}/recording", 4),
    ];

    #[test]
    fn a_route_is_found_by_method_and_path_and_another_method_is_refused() {
        assert_eq!(find(TABLE, &Method::GET, "/api/calls"), Found::Route(1, None));
        assert_eq!(find(TABLE, &Method::POST, "/api/calls"), Found::Route(2, None));
        assert_eq!(find(TABLE, &Method::DELETE, "/api/calls"), Found::WrongMethod);
        assert_eq!(find(TABLE, &Method::GET, "/api/call"), Found::Unknown);
        assert_eq!(find(TABLE, &Method::GET, "/api/calls/CA1"), Found::Route(3, Some("CA1")));
        assert_eq!(find(TABLE, &Method::GET, "/api/calls/CA1/recording"), Found::Route(4, Some("CA1")));
        assert_eq!(find(TABLE, &Method::PUT, "/api/calls/CA1/recording"), Found::WrongMethod);
        assert_eq!(find(TABLE, &Method::GET, "/api/calls/"), Found::Unknown, "an empty segment");
        assert_eq!(find(TABLE, &Method::GET, "/api/calls/a/b"), Found::Unknown, "a segment with a slash");
    }
}
