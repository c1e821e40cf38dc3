//! One route table per listener: path pattern, methods, handler. 404, 405
//! and the `Allow` header are computed from it.

use super::body::ResponseBody;
use http::{header, HeaderValue, Method, Response, StatusCode};

/// A path pattern: literal segments and parameters, `/tasks/{id}` or
/// `/tasks/{id}:cancel` (a parameter may be followed by a literal suffix
/// in its segment, as the HTTP+JSON binding's custom methods are).
///
/// ```text
/// "/"                      matches "/" only
/// "/health/detailed"       literal segments
/// "/tasks/{id}"            binds id to one non-empty segment without ':'
/// "/tasks/{id}:cancel"     binds id to what precedes ":cancel"
/// ```
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    text: &'static str,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(&'static str),
    Param {
        name: &'static str,
        suffix: &'static str,
    },
}

impl Pattern {
    /// Parses `text`; a pattern is written in code, so a malformed one is a
    /// programming error reported at start-up.
    pub(crate) fn parse(text: &'static str) -> Pattern {
        assert!(
            text.starts_with('/'),
            "route pattern {text:?} must start with '/'"
        );
        let segments = split(text)
            .map(|seg| match seg.strip_prefix('{') {
                Some(rest) => {
                    let close = rest
                        .find('}')
                        .unwrap_or_else(|| panic!("route pattern {text:?}: unclosed '{{'"));
                    Segment::Param {
                        name: &rest[..close],
                        suffix: &rest[close + 1..],
                    }
                }
                None => Segment::Literal(seg),
            })
            .collect();
        Pattern { text, segments }
    }

    /// A pattern of literal segments only: `text` as given (extra routes
    /// are exact paths; braces in them are not parameters).
    pub(crate) fn exact(text: &'static str) -> Pattern {
        Pattern {
            text,
            segments: split(text).map(Segment::Literal).collect(),
        }
    }

    /// The parameters if `path` matches.
    fn matches(&self, path: &str) -> Option<Params> {
        let mut params = Params::default();
        let mut parts = split(path);
        for seg in &self.segments {
            let part = parts.next()?;
            match seg {
                Segment::Literal(lit) if *lit == part => {}
                Segment::Literal(_) => return None,
                Segment::Param { name, suffix } => {
                    let value = part.strip_suffix(suffix)?;
                    // A colon starts a custom method (`{id}:cancel`), so
                    // no value holds one: `/tasks/{id}` never takes
                    // `/tasks/t-1:cancel`.
                    if value.is_empty() || value.contains(':') {
                        return None;
                    }
                    params.push(name, value);
                }
            }
        }
        parts.next().is_none().then_some(params)
    }
}

/// The segments of a path; `/` has none.
fn split(path: &str) -> impl Iterator<Item = &str> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    trimmed.split('/').filter(move |_| !trimmed.is_empty())
}

/// The parameters a pattern bound, by name (raw, still percent-encoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Params(Vec<(&'static str, String)>);

impl Params {
    /// The value bound to `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Binds `name` to `value`.
    pub(crate) fn push(&mut self, name: &'static str, value: &str) {
        self.0.push((name, value.to_string()));
    }
}

struct Route<H> {
    pattern: Pattern,
    methods: &'static [Method],
    handler: H,
}

/// What a request finds in a [`RouteTable`].
pub(crate) enum Lookup<'a, H> {
    /// A route for this path and method, with the parameters it bound.
    Route(&'a H, Params),
    /// Routes for this path, none for this method.
    MethodNotAllowed(HeaderValue),
    /// No route for this path.
    NoRoute,
}

/// Routes in the order they are tried.
pub(crate) struct RouteTable<H> {
    routes: Vec<Route<H>>,
}

/// The methods of read-only routes.
pub(crate) const GET: &[Method] = &[Method::GET, Method::HEAD];

impl<H> RouteTable<H> {
    pub(crate) fn new() -> Self {
        RouteTable { routes: Vec::new() }
    }

    /// Adds a route; routes added first are tried first.
    pub(crate) fn route(
        self,
        pattern: &'static str,
        methods: &'static [Method],
        handler: H,
    ) -> Self {
        self.push(Pattern::parse(pattern), methods, handler)
    }

    /// Adds a route for the exact path `path` (no parameters).
    pub(crate) fn exact(self, path: &'static str, methods: &'static [Method], handler: H) -> Self {
        self.push(Pattern::exact(path), methods, handler)
    }

    fn push(mut self, pattern: Pattern, methods: &'static [Method], handler: H) -> Self {
        self.routes.push(Route {
            pattern,
            methods,
            handler,
        });
        self
    }

    /// True when a route has exactly this pattern.
    pub(crate) fn has(&self, pattern: &str) -> bool {
        self.routes.iter().any(|r| r.pattern.text == pattern)
    }

    /// The route for `method` and `path`, or why there is none.
    pub(crate) fn find(&self, method: &Method, path: &str) -> Lookup<'_, H> {
        let mut allowed: Vec<&Method> = Vec::new();
        for route in &self.routes {
            let Some(params) = route.pattern.matches(path) else {
                continue;
            };
            if route.methods.contains(method) {
                return Lookup::Route(&route.handler, params);
            }
            for m in route.methods {
                if !allowed.contains(&m) {
                    allowed.push(m);
                }
            }
        }
        if allowed.is_empty() {
            return Lookup::NoRoute;
        }
        let allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
        Lookup::MethodNotAllowed(
            HeaderValue::from_str(&allow.join(", ")).unwrap_or(HeaderValue::from_static("GET")),
        )
    }
}

/// A plain-text response.
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::from(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The answer when no route takes the request.
pub(crate) fn not_routed<H>(found: Lookup<'_, H>) -> Response<ResponseBody> {
    match found {
        Lookup::MethodNotAllowed(allow) => {
            let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            resp.headers_mut().insert(header::ALLOW, allow);
            resp
        }
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable<&'static str> {
        RouteTable::new()
            .route("/", &[Method::POST], "rpc")
            .route("/tasks/{id}", GET, "get")
            .route("/tasks/{id}:cancel", &[Method::POST], "cancel")
            .route(
                "/tasks/{id}:subscribe",
                &[Method::GET, Method::POST],
                "subscribe",
            )
            .route("/health/detailed", GET, "health")
    }

    fn route(method: Method, path: &str) -> Option<(&'static str, Params)> {
        match table().find(&method, path) {
            Lookup::Route(h, p) => Some((*h, p)),
            _ => None,
        }
    }

    #[test]
    fn literal_and_parameter_segments_match() {
        assert_eq!(route(Method::POST, "/").unwrap().0, "rpc");
        assert_eq!(route(Method::GET, "/health/detailed").unwrap().0, "health");
        let (h, p) = route(Method::GET, "/tasks/t-1").unwrap();
        assert_eq!((h, p.get("id")), ("get", Some("t-1")));
        let (h, p) = route(Method::POST, "/tasks/t-1:cancel").unwrap();
        assert_eq!((h, p.get("id")), ("cancel", Some("t-1")));
        assert!(route(Method::GET, "/tasks/").is_none());
        assert!(route(Method::GET, "/tasks/a/b").is_none());
        assert!(route(Method::POST, "/tasks/:cancel").is_none());
        assert!(route(Method::GET, "/tasks/t-1:cancel").is_none());
        assert!(route(Method::GET, "/health").is_none());
        let exact = RouteTable::new().exact("/a/{b}", GET, "exact");
        assert!(matches!(
            exact.find(&Method::GET, "/a/{b}"),
            Lookup::Route(..)
        ));
        assert!(matches!(exact.find(&Method::GET, "/a/c"), Lookup::NoRoute));
    }

    #[test]
    fn method_not_allowed_lists_every_method_of_the_path() {
        match table().find(&Method::DELETE, "/tasks/t-1:subscribe") {
            Lookup::MethodNotAllowed(allow) => assert_eq!(allow, "GET, POST"),
            _ => panic!("expected 405"),
        }
        match table().find(&Method::GET, "/") {
            Lookup::MethodNotAllowed(allow) => assert_eq!(allow, "POST"),
            _ => panic!("expected 405"),
        }
        assert!(matches!(
            table().find(&Method::GET, "/nope"),
            Lookup::NoRoute
        ));
        let resp = not_routed(table().find(&Method::PUT, "/health/detailed"));
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()[header::ALLOW], "GET, HEAD");
    }
}
